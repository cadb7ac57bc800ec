-- Replica sets with their servers in failover-priority order, the active
-- master, and per-server stats fetched from the server itself. A server that
-- cannot be reached is reported unhealthy, without stats.
local ok_stat, stat = pcall(require, 'cartridge.lua-api.stat')
local ok_boxinfo, boxinfo = pcall(require, 'cartridge.lua-api.boxinfo')

local function uuid_of(server)
    if type(server) ~= 'table' then return nil end
    local uuid = str(server.uuid)
    -- get-topology fills a missing master with placeholders 'void'.
    if uuid == nil or uuid == 'void' or uuid == '' then return nil end
    return uuid
end

local function ordered(servers)
    local list = {}
    for key, server in pairs(servers or {}) do
        if type(server) == 'table' then
            table.insert(list, {key = key, server = server})
        end
    end
    table.sort(list, function(a, b)
        local pa = num(a.server.priority) or math.huge
        local pb = num(b.server.priority) or math.huge
        if pa ~= pb then return pa < pb end
        local ka = type(a.key) == 'number' and a.key or math.huge
        local kb = type(b.key) == 'number' and b.key or math.huge
        if ka ~= kb then return ka < kb end
        return tostring(a.key) < tostring(b.key)
    end)
    return list
end

-- Calls a stats function; nil when it fails or returns nothing.
local function fetch(fn, uri)
    local ok, res = pcall(fn, uri)
    if ok and type(res) == 'table' then return res end
    return nil
end

local function replication(info, self_uuid, master)
    local entries = info.replication and info.replication.replication_info
    local seen, following, lag = false, true, nil
    for _, r in pairs(type(entries) == 'table' and entries or {}) do
        if type(r) == 'table' and r.uuid ~= self_uuid
            and (master == nil or r.uuid == master)
            and str(r.upstream_status) ~= nil then
            seen = true
            if r.upstream_status ~= 'follow' then following = false end
            local l = num(r.upstream_lag)
            if l ~= nil and (lag == nil or l > lag) then lag = l end
        end
    end
    return seen and following, lag
end

local out = seq()
for _, rs in pairs(call('admin_get_replicasets') or {}) do
    local master = uuid_of(rs.active_master)
    local roles = seq()
    for _, role in pairs(type(rs.roles) == 'table' and rs.roles or {}) do
        if type(role) == 'string' then table.insert(roles, role) end
    end
    table.sort(roles)
    local servers = seq()
    for _, item in ipairs(ordered(rs.servers)) do
        local s = item.server
        local uuid = str(s.uuid) or ''
        local uri = str(s.uri) or ''
        local server = {
            uuid = uuid,
            uri = uri,
            alias = str(s.alias) or '',
            healthy = s.status == 'healthy',
            replicating = false,
        }
        local st = ok_stat and uri ~= '' and fetch(stat.get_stat, uri) or nil
        local info = ok_boxinfo and uri ~= '' and fetch(boxinfo.get_info, uri) or nil
        if st == nil or info == nil then
            server.healthy = false
        else
            server.bucket_count = num(st.vshard_buckets_count)
            if type(info.general) == 'table' and type(info.general.ro) == 'boolean' then
                server.read_only = info.general.ro
            end
            if master ~= nil and uuid == master then
                server.replicating = true
            else
                server.replicating, server.replication_lag = replication(info, uuid, master)
            end
        end
        table.insert(servers, server)
    end
    table.insert(out, {
        uuid = str(rs.uuid) or '',
        alias = str(rs.alias) or '',
        roles = roles,
        weight = num(rs.weight),
        all_rw = rs.all_rw == true,
        vshard_group = str(rs.vshard_group),
        master = master,
        servers = servers,
    })
end
table.sort(out, function(a, b) return a.alias < b.alias end)
return json.encode(out)

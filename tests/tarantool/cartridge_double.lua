#!/usr/bin/env tarantool
-- A Cartridge double: ONE Tarantool process that plays every Tarantool
-- instance of the dev cluster. Each pod's console socket is a `console.listen`
-- of this process; all of them share one Lua state, which keeps a topology
-- model per namespace (pods of different namespaces are different clusters).
-- The modules `cartridge`, `cartridge.lua-api.stat` and
-- `cartridge.lua-api.boxinfo` mirror the real Cartridge 2.x admin Lua API
-- (names, argument and result shapes, error classes and messages), so the
-- operator's Lua chunks run unchanged against real Cartridge and against this.
-- docs/tarantool-double.md describes what is modelled and where it deviates.
--
-- Usage: tarantool cartridge_double.lua CONTROL_SOCKET [MARKERS_DIR]
--   CONTROL_SOCKET  console socket for tests: require('cartridge_double')
--   MARKERS_DIR     optional; every <name>.json in it ({"namespace", "pod",
--                   "socket"}) is an instance to serve (the dev cluster's agent
--                   writes one per Running operator pod and removes it when the
--                   pod goes): desired state in files, so the agent and this
--                   process can start, stop and restart in any order.
-- Environment: TARANTOOL_BUCKET_COUNT (default 30000), DOUBLE_DRAIN_RATE
--   (buckets per second the simulated rebalancer moves, default 3000; real
--   vshard on 2 cores moves about 12), DOUBLE_DEFAULT_LAG (the upstream lag a
--   following replica reports, seconds, default 0.0004).

local console = require('console')
local fiber = require('fiber')
local fio = require('fio')
local json = require('json')
local log = require('log')
local socket = require('socket')
local uuid_lib = require('uuid')
local ffi = require('ffi')
ffi.cdef('int getpid(void);')
local PID = ffi.C.getpid()

local CONTROL = arg[1] or os.getenv('DOUBLE_CONTROL')
local MARKERS = arg[2] or os.getenv('DOUBLE_MARKERS_DIR')
local DEFAULT_BUCKETS = tonumber(os.getenv('TARANTOOL_BUCKET_COUNT')) or 30000
local DEFAULT_RATE = tonumber(os.getenv('DOUBLE_DRAIN_RATE')) or 3000
-- Real replication lag is tiny (and sometimes negative); below a millisecond
-- so that the operator, which ranks replicas by whole milliseconds, sees 0.
local DEFAULT_LAG = tonumber(os.getenv('DOUBLE_DEFAULT_LAG')) or 0.0004
-- Cartridge's default failover_timeout, and what eventual failover takes on
-- top of it before the next in priority is master (observed: about 3 s).
local DEFAULT_FAILOVER_TIMEOUT = 20
local REALISTIC_FAILOVER_EXTRA = 3
-- How long an instance that came back is not healthy yet (observed 1-3 s).
local REALISTIC_RECOVERY = 2
-- sun_path is 108 bytes with the terminating NUL; a longer path cannot be bound.
local MAX_SOCKET_PATH = 107
-- What a console in 'garbage' mode answers: framed like a YAML document (the
-- client stops reading at "\n...\n") but not valid YAML, so a parser must fail.
local GARBAGE = "---\n- [unterminated: {garbage\n...\n"
local START = fiber.time()

if CONTROL == nil then
    io.stderr:write('usage: tarantool cartridge_double.lua CONTROL_SOCKET [MARKERS_DIR]\n')
    os.exit(2)
end

-- ------------------------------------------------------------------ errors
-- Cartridge returns `nil, err` where err is an `errors` object: a table with
-- class_name, err (the message), str ("Class: message"), file, line, stack,
-- whose tostring() is str. Over the console it prints as a YAML map.
local error_mt = {__tostring = function(e) return e.str end}
local function new_error(class_name, fmt, ...)
    local msg = select('#', ...) > 0 and string.format(fmt, ...) or fmt
    local info = debug.getinfo(2, 'Sl')
    return setmetatable({
        class_name = class_name,
        err = msg,
        str = class_name .. ': ' .. msg,
        file = info and info.short_src,
        line = info and info.currentline,
        stack = 'stack traceback:\n\t[cartridge double]',
    }, error_mt)
end
-- Error classes, named as in Cartridge.
local E_EDIT = 'Editing cluster topology failed'
local E_TOPOLOGY = 'Invalid cluster topology config'
local E_VSHARD_CFG = 'ValidateConfigError'
local E_BOOTSTRAP = 'Bootstrapping vshard failed'
local E_FAILOVER = 'FailoverSetParamsError'
local E_PATCH = 'PatchClusterwideError'
local E_PROMOTE = 'PromoteLeaderError'
local E_STATE_PROVIDER = 'StateProviderError'

-- A validation step raises a Cartridge error object; the API function turns
-- it into `nil, err` (as Cartridge's `errors.pcall` does).
local function raise(class_name, fmt, ...)
    error(new_error(class_name, fmt, ...), 0)
end
local function pack(...) return {n = select('#', ...), ...} end
local function catching(fn)
    return function(...)
        local res = pack(pcall(fn, ...))
        if res[1] then
            return unpack(res, 2, res.n)
        end
        if getmetatable(res[2]) == error_mt then
            return nil, res[2]
        end
        error(res[2], 0) -- a bug or a bad argument: a Lua error, as in Cartridge's checks()
    end
end

local function deepcopy(v)
    if type(v) ~= 'table' then return v end
    local r = {}
    for k, x in pairs(v) do r[deepcopy(k)] = deepcopy(x) end
    return setmetatable(r, getmetatable(v))
end

-- Role dependencies of the article's example application (kv): its roles
-- declare these, so Cartridge enables and reports them too.
local ROLE_DEPENDENCIES = {
    ['app.roles.storage'] = 'vshard-storage',
    ['app.roles.router'] = 'vshard-router',
}

local function find(list, v)
    for i, x in ipairs(list) do if x == v then return i end end
    return nil
end

-- ------------------------------------------------------------------ state
local models = {}     -- namespace -> model (see new_model)
local instances = {}  -- socket path -> instance {path, namespace, alias, served, served_at, server, sessions}
local by_alias = {}   -- namespace -> alias -> instance
local faults = {}     -- namespace -> alias -> {name, opts}: per pod, kept while it is not served
local drain_rate = DEFAULT_RATE

-- The fault of an instance (a table {name, opts}) or nil.
local function fault_of(ns, alias)
    return faults[ns] and faults[ns][alias]
end
-- An instance's 'empty' fault is on: always, or with {after_edit = true}
-- once an edit has been applied in its namespace.
local function answers_empty(f)
    return f ~= nil and f.name == 'empty' and (not f.opts.after_edit or f.opts.edited == true)
end
local function fault_name(ns, alias)
    local f = fault_of(ns, alias)
    return f and f.name or 'ok'
end

local function new_model(ns)
    return {
        namespace = ns,
        bucket_count = DEFAULT_BUCKETS,
        bootstrapped = false,
        replicasets = {},  -- uuid -> {uuid, alias, roles = {..}, master = {uuid priority}, weight, vshard_group, all_rw, buckets}
        rs_order = {},     -- replica set uuids in creation order (listing order)
        servers = {},      -- uuid -> {uuid, uri, replicaset_uuid, disabled, electable, expelled}
        server_order = {}, -- server uuids in join order
        failover = {mode = 'disabled'},
        config = {},       -- application sections of the clusterwide config
        active = {},       -- replica set uuid -> active leader (stateful/raft: sticky)
        lag = {},          -- server alias -> upstream lag (seconds) it reports
        lag_range = nil,   -- {lo, hi}: random lag for replicas without their own (nil: DEFAULT_LAG)
        upstream_status = {}, -- server alias -> upstream status it reports (default 'follow')
        calls = {},        -- API function name -> number of calls
        recursive = true,  -- admin_get_* results with cyclic references (Cartridge < 2.7.4)
        carry = 0,         -- fraction of a bucket the rebalancer owes from the last tick
        state_provider = 'ok', -- 'ok', 'unreachable' or 'bad_password' (stateful failover's etcd2/stateboard)
        failover_delay = nil,  -- nil: failover notices a gone instance at once; else extra seconds
                               -- on top of failover_timeout (failover_timeout_override if set)
        failover_timeout_override = nil,
        recovery = 0,      -- seconds an instance that came back is not healthy (not electable) yet
        reach = {},        -- alias -> {up = bool, since = clock, returned = bool}: reachability history
        membership_delay = 0, -- seconds before membership reaches an unjoined instance
        reached = {},      -- alias -> true: membership reached it (probed, or the delay passed)
        topology_since = nil, -- clock of the first join
        config_as_stored = false, -- patched sections lose their map/seq hints ({} reads back as [])
        vshard_extra = {}, -- vshard section keys besides bucket_count and bootstrapped (patched)
    }
end

local function model_of(ns)
    local m = models[ns]
    if m == nil then
        m = new_model(ns)
        models[ns] = m
    end
    return m
end

local function count(m, name)
    m.calls[name] = (m.calls[name] or 0) + 1
end

-- An advertise URI "<pod>.<service>.<ns>.svc.cluster.local:3301" names the pod
-- in its first DNS label: that is the alias of the instance it reaches.
local function alias_of_uri(uri)
    if type(uri) ~= 'string' then return nil end
    local host = uri:match('^[^@]*@(.*)$') or uri
    host = host:match('^([^:/]+)')
    return host and host:match('^([^.]+)')
end

-- Whether the model has a (non-expelled) server of that pod.
local function joined_alias(m, alias)
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        if not s.expelled and alias_of_uri(s.uri) == alias then return true end
    end
    return false
end

local function has_topology(m)
    return next(m.server_order) ~= nil
end

-- Cartridge answers from an unconfigured instance's own (empty) config until
-- membership reaches it; then it proxies admin calls to a member. In the
-- double: an unjoined instance of a namespace with a topology is unreached
-- for m.membership_delay seconds after it is served (or after the first
-- join), or until a member probes it; the 'unreached' fault forces it.
local function unreached(inst, m, f)
    if f ~= nil and f.name == 'unreached' then return true end
    if inst.foreign or not has_topology(m) then return false end
    if m.reached[inst.alias] or joined_alias(m, inst.alias) then return false end
    local since = math.max(inst.served_at or 0, m.topology_since or 0)
    if fiber.clock() >= since + (m.membership_delay or 0) then
        m.reached[inst.alias] = true
        return false
    end
    return true
end

-- The instance a console session talks to: set by the console's on_start hook
-- (below) in the session's fiber, where every statement of the session runs.
-- caller(name) counts the call in that instance's namespace and returns
--   inst  the instance the call is answered as ('foreign': another one),
--   view  the model it answers from (unreached: an empty one),
--   m     the model changes go to, and net.box calls to other instances see,
--   f     its fault, if any.
-- A 'refuse' fault raises its Cartridge error here (the API functions are
-- wrapped in `catching`, so it comes back as `nil, err`).
local function caller(name)
    local inst = fiber.self().storage.double_instance
    if inst == nil then
        error('cartridge double: this console is not an instance socket;' ..
            ' connect to a pod socket (the control socket only has require("cartridge_double"))', 3)
    end
    count(model_of(inst.namespace), name)
    local f = fault_of(inst.namespace, inst.alias)
    if f ~= nil and f.name == 'refuse' then
        raise(f.opts.class or 'RemoteCallError', '%s', f.opts.message or 'refused by fault injection')
    end
    local m = model_of(inst.namespace)
    if f ~= nil and f.name == 'foreign' then
        local ns = f.opts.from_ns or inst.namespace
        inst = {namespace = ns, alias = f.opts.from_alias or inst.alias, foreign = true}
        m = models[ns] or new_model(ns)
    end
    local view = m
    if unreached(inst, m, f) then view = new_model(m.namespace) end
    return inst, view, m, f
end

local function instance_of(ns, alias)
    return alias and by_alias[ns] and by_alias[ns][alias]
end

-- Reachable = the pod's socket is served and the instance is not hung.
local function reachable(ns, alias)
    local inst = instance_of(ns, alias)
    return inst ~= nil and fault_name(ns, alias) ~= 'hang'
end

-- Reachability history, for the failover and recovery delays: called after
-- anything that can change reachable() (serve, unserve, a fault).
local function note_reach(ns, alias)
    local m = models[ns]
    if m == nil then return end
    local up = reachable(ns, alias)
    local r = m.reach[alias]
    if r == nil then
        m.reach[alias] = {up = up, since = fiber.clock(), returned = false}
    elseif r.up ~= up then
        m.reach[alias] = {up = up, since = fiber.clock(), returned = up}
    end
end

-- An instance that came back (served again, released from a hang) is not
-- healthy for m.recovery seconds: Cartridge is still connecting it.
local function recovering(m, alias)
    local r = m.reach[alias]
    return r ~= nil and r.up and r.returned and fiber.clock() < r.since + (m.recovery or 0)
end

-- Seconds failover takes to notice a gone instance: 0 unless
-- set_failover_delay / set_realistic_failover turned it on.
local function detection_delay(m)
    if m.failover_delay == nil then return 0 end
    local timeout = m.failover_timeout_override or m.failover.failover_timeout or DEFAULT_FAILOVER_TIMEOUT
    return timeout + m.failover_delay
end

-- Whether failover counts the instance as alive: reachable and recovered,
-- or gone so recently that failover has not noticed yet.
local function failover_alive(m, alias)
    if reachable(m.namespace, alias) then
        return not recovering(m, alias)
    end
    local r = m.reach[alias]
    return r ~= nil and not r.up and fiber.clock() < r.since + detection_delay(m)
end

local function is_storage(rs)
    return find(rs.roles, 'vshard-storage') ~= nil
end

local function live_servers(m, rs_uuid)
    local r = {}
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        if not s.expelled and s.replicaset_uuid == rs_uuid then table.insert(r, u) end
    end
    return r
end

-- Cartridge's topology.get_leaders_order: the new order, then the old one,
-- then the rest of the replica set's servers sorted by uuid.
local function leaders_order(m, rs_uuid, new_order)
    local rs = m.replicasets[rs_uuid]
    local ret = {}
    for _, u in ipairs(new_order or {}) do
        if not find(ret, u) then table.insert(ret, u) end
    end
    for _, u in ipairs(rs.master) do
        local s = m.servers[u]
        if s ~= nil and not s.expelled and s.electable ~= false and not find(ret, u) then
            table.insert(ret, u)
        end
    end
    local tail = {}
    for _, u in ipairs(live_servers(m, rs_uuid)) do
        if not find(ret, u) then table.insert(tail, u) end
    end
    table.sort(tail)
    for _, u in ipairs(tail) do table.insert(ret, u) end
    return ret
end

local function server_alias(m, u)
    return alias_of_uri(m.servers[u] and m.servers[u].uri)
end

-- The leader that serves writes: disabled failover = first in priority;
-- eventual = first reachable in priority; stateful/raft = the appointed one
-- stays until it becomes unreachable (no autoreturn), then the first reachable.
local function active_leader(m, rs_uuid)
    local order = leaders_order(m, rs_uuid)
    local mode = m.failover.mode or 'disabled'
    if mode == 'disabled' then
        return order[1]
    end
    local function ok(u)
        return u ~= nil and not m.servers[u].disabled and failover_alive(m, server_alias(m, u))
    end
    if (mode == 'stateful' or mode == 'raft') and ok(m.active[rs_uuid]) and find(order, m.active[rs_uuid]) then
        return m.active[rs_uuid]
    end
    -- Without its state provider the stateful coordinator cannot appoint
    -- anyone: the last appointment stays, even if that leader is gone.
    if mode == 'stateful' and m.state_provider ~= 'ok' and m.active[rs_uuid] and find(order, m.active[rs_uuid]) then
        return m.active[rs_uuid]
    end
    for _, u in ipairs(order) do
        if ok(u) then
            m.active[rs_uuid] = u
            return u
        end
    end
    return m.active[rs_uuid] and find(order, m.active[rs_uuid]) and m.active[rs_uuid] or order[1]
end

-- ------------------------------------------------------------------ topology views
local VOID = function() return {uri = 'void', uuid = 'void', status = 'void', message = 'void'} end

local function server_status(m, s)
    local alias = alias_of_uri(s.uri)
    local inst = instance_of(m.namespace, alias)
    if inst == nil then
        return 'unreachable', 'Server status is "dead"'
    elseif fault_name(m.namespace, alias) == 'hang' then
        return 'unreachable', 'Server status is "suspect"'
    elseif recovering(m, alias) then
        -- Cartridge reports the member's state while it is not configured.
        return 'warning', 'ConnectingFullmesh'
    end
    return 'healthy', ''
end

-- Cartridge's get_topology(): replica set and server objects that point at
-- each other (server.replicaset, replicaset.servers, replicaset.master and
-- active_master are server objects). Cartridge >= 2.7.4 drops
-- server.replicaset in admin_get_*; set_recursive(ns, false) models that.
local function get_topology(m)
    local rss, list = {}, {}
    local mode = m.failover.mode or 'disabled'
    for _, ru in ipairs(m.rs_order) do
        local rs = m.replicasets[ru]
        local o = {
            uuid = ru, alias = rs.alias, roles = deepcopy(rs.roles), status = 'healthy',
            master = VOID(), active_master = VOID(),
            weight = is_storage(rs) and rs.weight or nil,
            vshard_group = rs.vshard_group, all_rw = rs.all_rw or false,
            servers = {},
        }
        rss[ru] = o
        table.insert(list, o)
    end
    local servers = {}
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        if not s.expelled then
            local status, message = server_status(m, s)
            local rso = rss[s.replicaset_uuid]
            local order = leaders_order(m, s.replicaset_uuid)
            local srv = {
                uri = s.uri, uuid = u, alias = alias_of_uri(s.uri),
                status = status, message = message,
                disabled = s.disabled or false, electable = s.electable ~= false,
                priority = find(order, u), replicaset = rso, labels = {},
            }
            servers[u] = srv
            if status ~= 'healthy' then rso.status = 'unhealthy' end
        end
    end
    for _, ru in ipairs(m.rs_order) do
        local rso = rss[ru]
        local order = leaders_order(m, ru)
        for _, u in ipairs(order) do table.insert(rso.servers, servers[u]) end
        local active = active_leader(m, ru)
        if active ~= nil then rso.active_master = servers[active] end
        if mode == 'stateful' or mode == 'raft' then
            if active ~= nil then rso.master = servers[active] end
        elseif order[1] ~= nil then
            rso.master = servers[order[1]]
        end
    end
    return list, servers
end

local function server_list(servers)
    local r = {}
    for _, s in pairs(servers) do table.insert(r, s) end
    table.sort(r, function(a, b) return a.uri < b.uri end)
    return r
end

local function unlink(m, list, servers)
    if m.recursive then return end
    for _, s in pairs(servers) do
        s.replicaset_uuid = s.replicaset and s.replicaset.uuid
        s.replicaset = nil
    end
end

-- The clusterwide config as config_get_readonly() shows it.
local function topology_cfg(m)
    local t = {replicasets = {}, servers = {}, failover = deepcopy(m.failover)}
    for _, ru in ipairs(m.rs_order) do
        local rs = m.replicasets[ru]
        local roles = {}
        for _, r in ipairs(rs.roles) do roles[r] = true end
        t.replicasets[ru] = {
            alias = rs.alias, roles = roles, master = leaders_order(m, ru),
            weight = rs.weight, vshard_group = rs.vshard_group, all_rw = rs.all_rw,
        }
    end
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        t.servers[u] = s.expelled and 'expelled' or {
            uri = s.uri, replicaset_uuid = s.replicaset_uuid,
            disabled = s.disabled or false, electable = s.electable ~= false,
        }
    end
    return t
end

-- ------------------------------------------------------------------ buckets
-- Target bucket counts: bucket_count split over storages with weight > 0 in
-- proportion to their weights (largest remainder, so the sum is exact).
local function bucket_targets(m)
    local storages, total_w = {}, 0
    for _, ru in ipairs(m.rs_order) do
        local rs = m.replicasets[ru]
        if is_storage(rs) then
            table.insert(storages, rs)
            if (rs.weight or 0) > 0 then total_w = total_w + rs.weight end
        end
    end
    local targets, rem, sum = {}, {}, 0
    for i, rs in ipairs(storages) do
        local exact = total_w > 0 and m.bucket_count * math.max(rs.weight or 0, 0) / total_w or 0
        targets[rs.uuid] = math.floor(exact)
        sum = sum + targets[rs.uuid]
        table.insert(rem, {uuid = rs.uuid, frac = exact - math.floor(exact), i = i})
    end
    table.sort(rem, function(a, b)
        if a.frac ~= b.frac then return a.frac > b.frac end
        return a.i < b.i
    end)
    for i = 1, m.bucket_count - sum do
        if rem[i] then targets[rem[i].uuid] = targets[rem[i].uuid] + 1 end
    end
    return targets, storages
end

-- One rebalancer step: move up to `budget` buckets from replica sets above
-- their target to those below it. Only replica sets whose master is
-- reachable take part (vshard moves buckets master to master).
local function rebalance(m, budget)
    if not m.bootstrapped or budget <= 0 then return 0 end
    local targets, storages = bucket_targets(m)
    local over, under = {}, {}
    for _, rs in ipairs(storages) do
        local leader = active_leader(m, rs.uuid)
        if leader ~= nil and reachable(m.namespace, server_alias(m, leader)) then
            local d = rs.buckets - targets[rs.uuid]
            if d > 0 then table.insert(over, {rs = rs, n = d}) end
            if d < 0 then table.insert(under, {rs = rs, n = -d}) end
        end
    end
    local moved, i, j = 0, 1, 1
    while budget > 0 and over[i] and under[j] do
        local n = math.min(budget, over[i].n, under[j].n)
        over[i].rs.buckets = over[i].rs.buckets - n
        under[j].rs.buckets = under[j].rs.buckets + n
        over[i].n, under[j].n, budget, moved = over[i].n - n, under[j].n - n, budget - n, moved + n
        if over[i].n == 0 then i = i + 1 end
        if under[j].n == 0 then j = j + 1 end
    end
    return moved
end

local TICK = 0.1
fiber.create(function()
    fiber.name('rebalancer')
    while true do
        fiber.sleep(TICK)
        for _, m in pairs(models) do
            local rate = m.drain_rate or drain_rate
            local budget = rate * TICK + m.carry
            local whole = math.floor(budget)
            m.carry = budget - whole
            local ok, err = pcall(rebalance, m, whole)
            if not ok then log.error('rebalancer (%s): %s', m.namespace, err) end
        end
    end
end)

-- ------------------------------------------------------------------ cartridge API
local edit_topology = catching(function(args)
    local inst, view, m = caller('admin_edit_topology')
    if type(args) ~= 'table' then
        error('bad argument #1 to admin_edit_topology (table expected, got ' .. type(args) .. ')', 0)
    end
    -- An instance membership has not reached edits its own (empty) config
    -- (Cartridge proxies the call only once it knows a member).
    local src = view
    -- Work on a copy and commit only if every check passes: Cartridge applies a
    -- topology change as one two-phase commit, all or nothing.
    local t = {
        namespace = m.namespace, failover = src.failover, bootstrapped = src.bootstrapped,
        replicasets = deepcopy(src.replicasets), rs_order = deepcopy(src.rs_order),
        servers = deepcopy(src.servers), server_order = deepcopy(src.server_order),
    }
    local ret_servers, ret_rs = {}, {}

    for i, p in ipairs(args.servers or {}) do
        if type(p) ~= 'table' or type(p.uuid) ~= 'string' then
            error(('bad argument args.servers[%d].uuid to admin_edit_topology (string expected)'):format(i), 0)
        end
        local s = t.servers[p.uuid]
        if s == nil then
            raise(E_EDIT, 'Server %q not in config', p.uuid)
        elseif s.expelled then
            raise(E_EDIT, 'Server %q is expelled', p.uuid)
        end
        if p.uri ~= nil then s.uri = p.uri end
        if p.disabled ~= nil then s.disabled = p.disabled end
        if p.electable ~= nil then s.electable = p.electable end
        if p.expelled == true then s.expelled = true end
        table.insert(ret_servers, p.uuid)
    end
    if args.servers ~= nil and #args.servers ~= table.maxn(args.servers) then
        error('bad argument args.servers to edit_topology (it must be a contiguous array)', 0)
    end
    if args.replicasets ~= nil and #args.replicasets ~= table.maxn(args.replicasets) then
        error('bad argument args.replicasets to edit_topology (it must be a contiguous array)', 0)
    end

    for _, p in ipairs(args.replicasets or {}) do
        p.uuid = p.uuid or uuid_lib.str()
        local rs = t.replicasets[p.uuid]
        if rs == nil then
            if p.join_servers == nil or next(p.join_servers) == nil then
                raise(E_EDIT, 'Replicaset %q not in config', p.uuid)
            end
            rs = {uuid = p.uuid, alias = 'unnamed', roles = {}, master = {}, weight = 0, buckets = 0}
            t.replicasets[p.uuid] = rs
            table.insert(t.rs_order, p.uuid)
        end
        for _, j in ipairs(p.join_servers or {}) do
            j.uuid = j.uuid or uuid_lib.str()
            if t.servers[j.uuid] ~= nil then
                raise(E_EDIT, 'Server %q is already joined', j.uuid)
            end
            if type(j.uri) ~= 'string' then
                error('bad argument join_servers[].uri to admin_edit_topology (string expected)', 0)
            end
            -- The new instance must answer: Cartridge probes it and then runs
            -- the two-phase commit on it.
            if not reachable(m.namespace, alias_of_uri(j.uri)) then
                raise('ProbeError', 'Probe %q failed: no response', j.uri)
            end
            rs.master = leaders_order(t, p.uuid)
            table.insert(rs.master, j.uuid)
            t.servers[j.uuid] = {uuid = j.uuid, uri = j.uri, replicaset_uuid = p.uuid,
                disabled = false, electable = true}
            table.insert(t.server_order, j.uuid)
            table.insert(ret_servers, j.uuid)
        end
        local was_storage = is_storage(rs)
        if p.roles ~= nil then
            local roles = {}
            for _, r in ipairs(p.roles) do
                if not find(roles, r) then table.insert(roles, r) end
                -- Cartridge enables a role's dependencies with it and
                -- reports them among the replica set's roles.
                local dep = ROLE_DEPENDENCIES[r]
                if dep ~= nil and not find(roles, dep) then table.insert(roles, dep) end
            end
            rs.roles = roles
        end
        if p.failover_priority ~= nil then
            for _, u in ipairs(p.failover_priority) do
                local s = t.servers[u]
                if s == nil then
                    raise(E_TOPOLOGY, 'replicasets[%s] leader %q doesn\'t exist', p.uuid, u)
                elseif s.expelled then
                    raise(E_TOPOLOGY, 'replicasets[%s] leader %q can\'t be expelled', p.uuid, u)
                elseif s.replicaset_uuid ~= p.uuid then
                    raise(E_TOPOLOGY, 'replicasets[%s] leader %q belongs to another replicaset', p.uuid, u)
                end
            end
            rs.master = leaders_order(t, p.uuid, p.failover_priority)
        end
        if p.alias ~= nil then rs.alias = p.alias end
        if p.all_rw ~= nil then rs.all_rw = p.all_rw end
        if is_storage(rs) then
            rs.vshard_group = p.vshard_group or rs.vshard_group or 'default'
        end
        -- Cartridge's weight rules: 0 unless a storage; a new storage gets 1
        -- before vshard bootstrap and 0 after it (it fills up once given weight).
        if not is_storage(rs) then
            rs.weight = 0
        elseif p.weight ~= nil then
            rs.weight = p.weight
        elseif not was_storage then
            rs.weight = t.bootstrapped and 0 or 1
        end
        table.insert(ret_rs, p.uuid)
    end

    -- Drop replica sets left without servers; drop expelled servers from priorities.
    local kept = {}
    for _, ru in ipairs(t.rs_order) do
        local rs = t.replicasets[ru]
        if next(live_servers(t, ru)) == nil then
            t.replicasets[ru] = nil
        else
            rs.master = leaders_order(t, ru)
            table.insert(kept, ru)
        end
    end
    local old_rs_order = t.rs_order
    t.rs_order = kept

    -- topology.validate: the instance doing the change must stay in the
    -- cluster. Cartridge checks "is listed" only for an instance that has a
    -- uuid already: an edit through a fresh instance that does not join it
    -- configures the cluster without it (it stays unconfigured and proxies).
    local me
    for _, u in ipairs(src.server_order) do
        local s = src.servers[u]
        if not s.expelled and alias_of_uri(s.uri) == inst.alias then me = u end
    end
    if me ~= nil and t.servers[me].expelled then
        raise(E_TOPOLOGY, 'Current instance %q can not be expelled', t.servers[me].uri)
    end
    if me ~= nil and t.servers[me].disabled then
        raise(E_TOPOLOGY, 'Current instance %q can not be disabled', t.servers[me].uri)
    end
    if me ~= nil and t.servers[me] == nil then
        raise(E_TOPOLOGY, 'Current instance %q is not listed in config', src.servers[me].uri)
    end
    if (t.failover.mode == 'raft') then
        for _, ru in ipairs(t.rs_order) do
            if t.replicasets[ru].all_rw then
                raise(E_TOPOLOGY, "Raft failover can't be enabled with ALL_RW replicasets")
            end
        end
    end
    -- vshard-utils.validate_config
    local storages, total_w = 0, 0
    for _, ru in ipairs(t.rs_order) do
        local rs = t.replicasets[ru]
        if type(rs.weight) ~= 'number' or rs.weight < 0 then
            raise(E_VSHARD_CFG, 'replicasets[%s].weight must be non-negative, got %s', ru, rs.weight)
        end
        if is_storage(rs) then
            if rs.vshard_group ~= 'default' then
                raise(E_VSHARD_CFG, 'replicasets[%s] can\'t be added to vshard_group %q, cluster doesn\'t have any',
                    ru, rs.vshard_group)
            end
            storages, total_w = storages + 1, total_w + rs.weight
        end
    end
    if storages > 0 and total_w <= 0 then
        raise(E_VSHARD_CFG, 'At least one vshard-storage (default) must have weight > 0')
    end
    if src.bootstrapped then
        for _, ru in ipairs(old_rs_order) do
            local old = src.replicasets[ru]
            local new = t.replicasets[ru]
            if old ~= nil and is_storage(old) and (new == nil or not is_storage(new)) then
                if old.weight ~= 0 then
                    raise(E_VSHARD_CFG, "replicasets[%s] is a vshard-storage which can't be removed", ru)
                end
                if old.buckets > 0 then
                    raise(E_VSHARD_CFG, "replicasets[%s] rebalancing isn't finished yet", ru)
                end
            end
        end
    end

    if src ~= m and has_topology(m) then
        -- A second cluster over the first: the configured members refuse
        -- the prepare of a config that drops servers they know.
        for _, u in ipairs(m.server_order) do
            if t.servers[u] == nil then
                raise(E_TOPOLOGY, 'servers[%s] can not be removed from config', u)
            end
        end
        raise('Prepare2pcError', 'cartridge double: an edit through an instance membership has not reached,' ..
            ' in a namespace that already has a cluster, is not modelled')
    end

    m.replicasets, m.rs_order, m.servers, m.server_order = t.replicasets, t.rs_order, t.servers, t.server_order
    -- An 'empty' fault armed {after_edit = true} starts with the first edit
    -- applied in its namespace (an answer read right after a topology
    -- change may be []).
    for _, f in pairs(faults[m.namespace] or {}) do
        if f.name == 'empty' and f.opts.after_edit then f.opts.edited = true end
    end
    -- Leaders of new replica sets are appointed at once (and a gone one is
    -- replaced): as above, a later priority edit keeps them.
    for _, ru in ipairs(m.rs_order) do active_leader(m, ru) end
    if m.topology_since == nil and has_topology(m) then m.topology_since = fiber.clock() end
    local list, servers = get_topology(m)
    local by_uuid = {}
    for _, o in ipairs(list) do by_uuid[o.uuid] = o end
    local ret = {servers = {}, replicasets = {}}
    for _, u in ipairs(ret_servers) do table.insert(ret.servers, servers[u]) end
    for _, u in ipairs(ret_rs) do table.insert(ret.replicasets, by_uuid[u]) end
    return ret
end)

local admin_get_replicasets = catching(function()
    local _, m, _, f = caller('admin_get_replicasets') -- m: the model it answers from
    if answers_empty(f) then return {} end
    local list, servers = get_topology(m)
    unlink(m, list, servers)
    return list
end)

local admin_get_servers = catching(function()
    local _, m, _, f = caller('admin_get_servers') -- m: the model it answers from
    if answers_empty(f) then return {} end
    local list, servers = get_topology(m)
    unlink(m, list, servers)
    return server_list(servers)
end)

local admin_probe_server = catching(function(uri)
    local _, view, m = caller('admin_probe_server')
    if type(uri) ~= 'string' then
        error('bad argument #1 to admin_probe_server (string expected, got ' .. type(uri) .. ')', 0)
    end
    local alias = alias_of_uri(uri)
    if reachable(m.namespace, alias) then
        -- membership.probe_uri: a member that probes an instance makes it
        -- known to the cluster (and the cluster to it).
        if view == m and has_topology(m) then m.reached[alias] = true end
        return true
    end
    return nil, new_error('ProbeServerError', 'Probe %q failed: no response', uri)
end)

local admin_bootstrap_vshard = catching(function()
    local _, m = caller('admin_bootstrap_vshard') -- m: the model it answers from
    if not has_topology(m) then
        raise('RemoteCallError', 'No remotes with role "vshard-router" available')
    end
    if m.bootstrapped then
        raise(E_BOOTSTRAP, 'already bootstrapped')
    end
    local router = false
    for _, ru in ipairs(m.rs_order) do
        if find(m.replicasets[ru].roles, 'vshard-router') then router = true end
    end
    if not router then
        raise('RemoteCallError', 'No remotes with role "vshard-router" available')
    end
    local targets, storages = bucket_targets(m)
    if next(storages) == nil then
        raise(E_BOOTSTRAP, 'Sharding config is empty')
    end
    for _, rs in ipairs(storages) do
        local leader = active_leader(m, rs.uuid)
        if not reachable(m.namespace, server_alias(m, leader)) then
            raise(E_BOOTSTRAP, '%q in vshard-router/default not ready yet', m.servers[leader].uri)
        end
    end
    for _, rs in ipairs(storages) do rs.buckets = targets[rs.uuid] end
    m.bootstrapped = true
    return true
end)

local function failover_params(m)
    local f = m.failover
    local ret = deepcopy(f)
    ret.mode = ret.mode or 'disabled'
    ret.tarantool_params = ret.tarantool_params or {}
    ret.tarantool_params.uri = ret.tarantool_params.uri or 'tcp://localhost:4401'
    ret.tarantool_params.password = ret.tarantool_params.password or ''
    ret.etcd2_params = ret.etcd2_params or {}
    local e = ret.etcd2_params
    e.prefix = e.prefix or '/'
    e.lock_delay = e.lock_delay or 10
    if e.endpoints == nil or next(e.endpoints) == nil then
        e.endpoints = {'http://127.0.0.1:4001', 'http://127.0.0.1:2379'}
    end
    e.username, e.password = e.username or '', e.password or ''
    ret.failover_timeout = ret.failover_timeout or 20
    if ret.mode ~= 'stateful' or ret.fencing_enabled == nil then ret.fencing_enabled = false end
    ret.fencing_timeout = ret.fencing_timeout or 10
    ret.fencing_pause = ret.fencing_pause or 2
    if ret.mode ~= 'stateful' or ret.leader_autoreturn == nil then ret.leader_autoreturn = false end
    ret.autoreturn_delay = ret.autoreturn_delay or 300
    return ret
end

local failover_get_params = catching(function()
    local _, m = caller('failover_get_params') -- m: the model it answers from
    return failover_params(m)
end)

local FAILOVER_KEYS = {
    mode = 'string', state_provider = 'string', failover_timeout = 'number',
    tarantool_params = 'table', etcd2_params = 'table', fencing_enabled = 'boolean',
    fencing_timeout = 'number', fencing_pause = 'number', leader_autoreturn = 'boolean',
    autoreturn_delay = 'number', check_cookie_hash = 'boolean',
}

local failover_set_params = catching(function(opts)
    local _, m = caller('failover_set_params') -- m: the model it answers from
    if opts ~= nil and type(opts) ~= 'table' then
        error('bad argument #1 to failover_set_params (?table expected, got ' .. type(opts) .. ')', 0)
    end
    for k, v in pairs(opts or {}) do
        if FAILOVER_KEYS[k] == nil then
            error(('bad argument opts.%s to failover_set_params (unexpected argument)'):format(k), 0)
        elseif type(v) ~= FAILOVER_KEYS[k] then
            error(('bad argument opts.%s to failover_set_params (?%s expected, got %s)'):format(
                k, FAILOVER_KEYS[k], type(v)), 0)
        end
    end
    if not has_topology(m) then
        raise(E_FAILOVER, "Cluster isn't bootstrapped yet")
    end
    local f = deepcopy(m.failover)
    for k, v in pairs(opts or {}) do f[k] = deepcopy(v) end
    -- topology.validate_failover_schema
    local field = 'topology_new'
    if f.mode ~= 'disabled' and f.mode ~= 'eventual' and f.mode ~= 'stateful' and f.mode ~= 'raft' then
        raise(E_TOPOLOGY, '%s.failover unknown mode %q', field, tostring(f.mode))
    end
    if f.failover_timeout ~= nil and f.failover_timeout < 0 then
        raise(E_TOPOLOGY, '%s.failover.failover_timeout must be non-negative, got %s', field, f.failover_timeout)
    end
    if f.fencing_timeout ~= nil and f.fencing_timeout < 0 then
        raise(E_TOPOLOGY, '%s.failover.fencing_timeout must be non-negative, got %s', field, f.fencing_timeout)
    end
    if f.fencing_pause ~= nil and f.fencing_pause <= 0 then
        raise(E_TOPOLOGY, '%s.failover.fencing_pause must be positive, got %s', field, f.fencing_pause)
    end
    if f.mode == 'stateful' and f.state_provider == nil then
        raise(E_TOPOLOGY, '%s.failover missing state_provider for mode "stateful"', field)
    end
    if f.state_provider == 'tarantool' then
        if f.tarantool_params == nil then raise(E_TOPOLOGY, '%s.failover missing tarantool_params', field) end
        if type(f.tarantool_params.uri) ~= 'string' then
            raise(E_TOPOLOGY, '%s.failover.tarantool_params.uri must be a string, got %s',
                field, type(f.tarantool_params.uri))
        end
        if type(f.tarantool_params.password) ~= 'string' then
            raise(E_TOPOLOGY, '%s.failover.tarantool_params.password must be a string, got %s',
                field, type(f.tarantool_params.password))
        end
    elseif f.state_provider == 'etcd2' then
        if f.etcd2_params == nil then raise(E_TOPOLOGY, '%s.failover missing etcd2_params', field) end
    elseif f.state_provider ~= nil then
        raise(E_TOPOLOGY, '%s.failover unknown state_provider %q', field, f.state_provider)
    end
    if f.mode == 'raft' then
        for _, ru in ipairs(m.rs_order) do
            if m.replicasets[ru].all_rw then
                raise(E_TOPOLOGY, "Raft failover can't be enabled with ALL_RW replicasets")
            end
        end
    end
    m.failover = f
    m.active = {}
    -- The new failover appoints its leaders now (the first alive in
    -- priority), not at the next read: a priority edit sent before anyone
    -- reads must not move a stateful or raft leader.
    for _, ru in ipairs(m.rs_order) do active_leader(m, ru) end
    return true
end)

-- Sections the double keeps in its own model: `vshard` can be patched (as in
-- Cartridge, validated like vshard-utils does); patching `topology` and
-- `vshard_groups` by hand is not modelled.
local SYSTEM_SECTIONS = {topology = true, vshard_groups = true}

-- A copy without map/seq serialization hints: what Cartridge gives back
-- after storing a section (json.encode then writes an empty table as []).
local function plain(v)
    if type(v) ~= 'table' then return v end
    local r = {}
    for k, x in pairs(v) do r[plain(k)] = plain(x) end
    return r
end

-- vshard-utils.validate_vshard_group: optional numeric options, whether 0
-- is allowed, and the word its message uses (the sched_* ones say
-- "non-negative" but refuse 0).
local VSHARD_NUMBERS = {
    rebalancer_max_receiving = {false, 'positive'}, rebalancer_max_sending = {false, 'positive'},
    collect_bucket_garbage_interval = {false, 'positive'}, sched_ref_quota = {false, 'non-negative'},
    sched_move_quota = {false, 'non-negative'}, sync_timeout = {true, 'non-negative'},
    rebalancer_disbalance_threshold = {true, 'non-negative'},
}
local function patch_vshard(m, v)
    if type(v) ~= 'table' then raise(E_VSHARD_CFG, 'section vshard must be a table') end
    if type(v.bucket_count) ~= 'number' then raise(E_VSHARD_CFG, 'vshard.bucket_count must be a number') end
    if v.bucket_count <= 0 then raise(E_VSHARD_CFG, 'vshard.bucket_count must be positive') end
    for k, bound in pairs(VSHARD_NUMBERS) do
        local x = v[k]
        if x ~= nil then
            if type(x) ~= 'number' then raise(E_VSHARD_CFG, 'vshard.%s must be a number', k) end
            if x < 0 or (x == 0 and not bound[1]) then
                raise(E_VSHARD_CFG, 'vshard.%s must be %s', k, bound[2])
            end
        end
    end
    for _, k in ipairs({'collect_lua_garbage', 'connection_fetch_schema'}) do
        if v[k] ~= nil and type(v[k]) ~= 'boolean' then raise(E_VSHARD_CFG, 'vshard.%s must be a boolean', k) end
    end
    if v.rebalancer_mode ~= nil and v.rebalancer_mode ~= 'auto' and v.rebalancer_mode ~= 'manual'
        and v.rebalancer_mode ~= 'off' then
        raise(E_VSHARD_CFG, 'vshard.rebalancer must be one of: "auto", "manual", "off"')
    end
    if v.bucket_count ~= m.bucket_count then raise(E_VSHARD_CFG, "vshard.bucket_count can't be changed") end
    if type(v.bootstrapped) ~= 'boolean' then raise(E_VSHARD_CFG, 'vshard.bootstrapped must be true or false') end
    return function()
        -- The flag only, as in Cartridge: no bucket is created or dropped.
        m.bootstrapped = v.bootstrapped
        m.vshard_extra = {}
        for k, x in pairs(v) do
            if k ~= 'bucket_count' and k ~= 'bootstrapped' then
                m.vshard_extra[k] = m.config_as_stored and plain(x) or deepcopy(x)
            end
        end
    end
end

local config_patch_clusterwide = catching(function(patch)
    local _, m = caller('config_patch_clusterwide') -- m: the model it answers from
    if type(patch) ~= 'table' then
        error('bad argument #1 to config_patch_clusterwide (table expected, got ' .. type(patch) .. ')', 0)
    end
    if not has_topology(m) then
        raise(E_PATCH, "Current instance isn't bootstrapped yet")
    end
    local apply_vshard
    for k, v in pairs(patch) do
        if type(k) ~= 'string' then
            raise(E_PATCH, 'Config section names must be strings, got %s', type(k))
        end
        if SYSTEM_SECTIONS[k] then
            raise(E_PATCH, 'cartridge double: patching the %q section is not modelled', k)
        end
        if k == 'vshard' then
            apply_vshard = patch_vshard(m, v ~= box.NULL and v or nil)
        end
    end
    if apply_vshard then apply_vshard() end
    for k, v in pairs(patch) do
        if k == 'vshard' then -- luacheck: ignore 542
            -- kept in the model (above)
        elseif v == nil or v == box.NULL then  -- box.NULL (json.null) deletes a section
            m.config[k] = nil
        elseif m.config_as_stored then
            m.config[k] = plain(v)
        else
            m.config[k] = deepcopy(v)
        end
    end
    return true
end)

local config_get_readonly = catching(function(section)
    local _, m = caller('config_get_readonly') -- m: the model it answers from
    if not has_topology(m) then
        return nil
    end
    local conf = deepcopy(m.config)
    conf.topology = topology_cfg(m)
    conf.vshard = deepcopy(m.vshard_extra)
    conf.vshard.bucket_count, conf.vshard.bootstrapped = m.bucket_count, m.bootstrapped
    if section ~= nil then
        return conf[section]
    end
    return conf
end)

-- ------------------------------------------------------------------ lua-api.stat / boxinfo
-- What a net.box call to another instance returns when it cannot be made.
local function remote_failure(m, uri)
    local inst = instance_of(m.namespace, alias_of_uri(uri))
    if inst == nil then
        return new_error('NetboxCallError', '%q: Connection refused', uri)
    elseif fault_name(inst.namespace, inst.alias) == 'hang' then
        fiber.sleep(1) -- Cartridge calls with {timeout = 1}
        return new_error('NetboxCallError', '%q: timed out', uri)
    end
    return nil
end

local function joined_server(m, uri, inst)
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        if not s.expelled and (s.uri == uri or (uri == nil and alias_of_uri(s.uri) == inst.alias)) then
            return s
        end
    end
    -- The same pod under another spelling of its URI.
    local alias = uri and alias_of_uri(uri) or inst.alias
    for _, u in ipairs(m.server_order) do
        local s = m.servers[u]
        if not s.expelled and alias_of_uri(s.uri) == alias then return s end
    end
    return nil
end

-- The upstream lag a replica reports: its own (set_lag), else one drawn from
-- the namespace's range (set_lag_range), else DEFAULT_LAG.
local function lag_of(m, alias)
    if m.lag[alias] ~= nil then return m.lag[alias] end
    if m.lag_range ~= nil then
        local lo, hi = m.lag_range[1], m.lag_range[2]
        return lo + math.random() * (hi - lo)
    end
    return DEFAULT_LAG
end

local get_stat = catching(function(uri)
    local inst, _, m = caller('get_stat') -- net.box calls: membership plays no part
    if uri ~= nil then
        local err = remote_failure(m, uri)
        if err then return nil, err end
    end
    local s = joined_server(m, uri, inst)
    if s == nil then
        return nil -- an instance that is not configured yet has no box.cfg
    end
    local rs = m.replicasets[s.replicaset_uuid]
    local mib = 1024 * 1024
    return {
        items_size = 8 * mib, items_used = 2 * mib, items_used_ratio = '25.00%',
        quota_size = 256 * mib, quota_used = 32 * mib, quota_used_ratio = '12.50%',
        arena_size = 32 * mib, arena_used = 8 * mib, arena_used_ratio = '25.00%',
        vshard_buckets_count = is_storage(rs) and rs.buckets or nil,
    }
end)

local get_info = catching(function(uri)
    local inst, _, m = caller('get_info')
    if uri ~= nil then
        local err = remote_failure(m, uri)
        if err then return nil, err end
    end
    local s = joined_server(m, uri, inst)
    if s == nil then
        return nil -- not configured: Cartridge returns nil while box.cfg is not called
    end
    local me = alias_of_uri(s.uri)
    local rs = m.replicasets[s.replicaset_uuid]
    local order = leaders_order(m, rs.uuid)
    local replication_info = {}
    for i, u in ipairs(order) do
        local peer = m.servers[u]
        local entry = {id = i, uuid = u, lsn = 0}
        if u ~= s.uuid then
            local peer_alias = alias_of_uri(peer.uri)
            if reachable(m.namespace, peer_alias) then
                entry.upstream_status = m.upstream_status[me] or 'follow'
                entry.upstream_lag = lag_of(m, me)
                entry.upstream_idle = 0
                entry.upstream_peer = peer.uri
                entry.downstream_status = 'follow'
            else
                entry.upstream_status = 'disconnected'
                entry.upstream_message = ('connect, called on fd 42, aka %s: Connection refused'):format(peer.uri)
                entry.upstream_peer = peer.uri
                entry.upstream_idle = fiber.time() - START
            end
        end
        replication_info[i] = entry
    end
    local leader = active_leader(m, rs.uuid)
    return {
        general = {
            version = _TARANTOOL, pid = PID, uptime = math.floor(fiber.time() - START),
            instance_uuid = s.uuid, replicaset_uuid = rs.uuid,
            work_dir = '.', listen = s.uri, ro = not (leader == s.uuid or rs.all_rw),
            worker_pool_threads = 4,
        },
        storage = {wal_mode = 'write', memtx_memory = 268435456},
        network = {net_msg_max = 768, readahead = 16320, io_collect_interval = box.NULL},
        replication = {
            replication_connect_quorum = #order, replication_timeout = 1,
            vclock = {0}, replication_info = replication_info,
        },
        cartridge = {version = '2.7.3-double', state = recovering(m, me) and 'ConnectingFullmesh' or 'RolesConfigured'},
    }
end)

-- failover_promote({[replicaset_uuid] = instance_uuid}, opts): appoints the
-- active master under stateful and raft failover (where failover_priority
-- alone does not move it); refused in the other modes (the operator's chunk
-- does not call it there). Under stateful failover it needs the state
-- provider: set_state_provider(ns, 'unreachable') makes it fail as
-- Cartridge's failover.get_coordinator() does.
local failover_promote = catching(function(leaders, opts)
    local _, m = caller('failover_promote') -- m: the model it answers from
    if type(leaders) ~= 'table' then
        error('bad argument #1 to failover_promote (table expected, got ' .. type(leaders) .. ')', 0)
    end
    if opts ~= nil and type(opts) ~= 'table' then
        error('bad argument #2 to failover_promote (?table expected, got ' .. type(opts) .. ')', 0)
    end
    local mode = m.failover.mode or 'disabled'
    if mode ~= 'stateful' and mode ~= 'raft' then
        raise(E_PROMOTE, 'Promotion only works with stateful failover')
    end
    if mode == 'stateful' and m.state_provider ~= 'ok' then
        raise(E_STATE_PROVIDER, 'State provider unavailable')
    end
    for rs_uuid, u in pairs(leaders) do
        if m.replicasets[rs_uuid] == nil then
            raise(E_PROMOTE, 'Replicaset %q doesn\'t exist', rs_uuid)
        end
        local s = m.servers[u]
        if s == nil or s.expelled or s.replicaset_uuid ~= rs_uuid then
            raise(E_PROMOTE, 'Server %q doesn\'t belong to replicaset %q', u, rs_uuid)
        end
        if s.disabled or not reachable(m.namespace, server_alias(m, u)) then
            raise(E_PROMOTE, 'Server %q is unreachable or disabled', u)
        end
    end
    for rs_uuid, u in pairs(leaders) do
        m.active[rs_uuid] = u
    end
    return true
end)

package.loaded['cartridge'] = {
    failover_promote = failover_promote,
    VERSION = '2.7.3-double',
    admin_edit_topology = edit_topology,
    admin_get_replicasets = admin_get_replicasets,
    admin_get_servers = admin_get_servers,
    admin_probe_server = admin_probe_server,
    admin_bootstrap_vshard = admin_bootstrap_vshard,
    failover_get_params = failover_get_params,
    failover_set_params = failover_set_params,
    config_patch_clusterwide = config_patch_clusterwide,
    config_get_readonly = config_get_readonly,
}
package.loaded['cartridge.lua-api.stat'] = {get_stat = get_stat}
package.loaded['cartridge.lua-api.boxinfo'] = {get_info = get_info}

-- ------------------------------------------------------------------ instance sockets
local function close_sessions(inst)
    for client in pairs(inst.sessions) do
        -- shutdown (not close): the session fiber's read returns EOF and its
        -- server closes the socket, as when the instance's process dies.
        pcall(client.shutdown, client, socket.SHUT_RDWR)
    end
    inst.sessions = {}
end

local function serve(path, ns, alias)
    if type(path) ~= 'string' or path:sub(1, 1) ~= '/' then
        error('serve: the socket path must be absolute, got ' .. tostring(path), 2)
    end
    if type(ns) ~= 'string' or ns == '' or type(alias) ~= 'string' or alias == '' then
        error('serve: namespace and alias (pod name) are required', 2)
    end
    if #path > MAX_SOCKET_PATH then
        error(('serve: socket path too long (%d bytes, a unix socket path has at most %d): %s')
            :format(#path, MAX_SOCKET_PATH, path), 2)
    end
    local inst = instances[path]
    if inst ~= nil then
        if inst.namespace == ns and inst.alias == alias then return true end
        error(('serve: %s already serves %s/%s'):format(path, inst.namespace, inst.alias), 2)
    end
    local other = instance_of(ns, alias)
    if other ~= nil then
        error(('serve: %s/%s is already served at %s'):format(ns, alias, other.path), 2)
    end
    -- A stale socket file (from a process that died) would make bind fail.
    if fio.path.lexists(path) then fio.unlink(path) end
    local ok, server = pcall(console.listen, 'unix/:' .. path)
    if not ok then
        error(('serve: cannot listen on %s: %s'):format(path, server), 2)
    end
    inst = {path = path, namespace = ns, alias = alias, served = true, served_at = fiber.clock(),
        server = server, sessions = {}}
    instances[path] = inst
    by_alias[ns] = by_alias[ns] or {}
    by_alias[ns][alias] = inst
    model_of(ns)
    note_reach(ns, alias)
    log.info('serving %s/%s at %s', ns, alias, path)
    return true
end

local function unserve(path)
    local inst = instances[path]
    if inst == nil then return false end
    inst.served = false
    instances[path] = nil
    by_alias[inst.namespace][inst.alias] = nil
    note_reach(inst.namespace, inst.alias)
    pcall(inst.server.close, inst.server)
    fio.unlink(path)
    close_sessions(inst)
    log.info('stopped serving %s/%s at %s', inst.namespace, inst.alias, path)
    return true
end

-- Each console session learns its instance from the socket it was accepted
-- on: getsockname() of an accepted unix socket is the listening path.
console.on_start(function(self)
    local name = self.client and self.client:name()
    local inst = name and instances[name.port]
    if inst == nil then return end -- the control socket
    fiber.self().storage.double_instance = inst
    inst.sessions[self.client] = true
    local base_eval = self.eval
    self.eval = function(repl, line)
        -- A hung instance accepts connections but never answers.
        while fault_name(inst.namespace, inst.alias) == 'hang' and inst.served do fiber.sleep(0.05) end
        -- A late one answers after its delay (the statement runs after it).
        local f = fault_of(inst.namespace, inst.alias)
        if f ~= nil and f.name == 'late' and line ~= nil then fiber.sleep(f.opts.delay or 3) end
        if not inst.served or line == nil then
            inst.sessions[repl.client] = nil
            return nil -- ends the session
        end
        local out = base_eval(repl, line)
        if fault_name(inst.namespace, inst.alias) == 'garbage' then return GARBAGE end
        return out
    end
end)

-- ------------------------------------------------------------------ markers (dev cluster agent)
local marker_errors = {}
local function sync_markers()
    local want = {}
    for _, f in ipairs(fio.glob(fio.pathjoin(MARKERS, '*.json')) or {}) do
        local fh = io.open(f, 'r')
        local text = fh and fh:read('*a')
        if fh then fh:close() end
        local ok, d = pcall(json.decode, text or '')
        if ok and type(d) == 'table' and d.socket and d.namespace and d.pod then
            want[d.socket] = d
        elseif marker_errors[f] ~= text then
            marker_errors[f] = text
            log.error('marker %s: expected {"namespace", "pod", "socket"}, got %s', f, text)
        end
    end
    for path in pairs(instances) do
        if instances[path].marker and want[path] == nil then unserve(path) end
    end
    for path, d in pairs(want) do
        if instances[path] == nil then
            local ok, err = pcall(serve, path, d.namespace, d.pod)
            if ok then
                instances[path].marker = true
                marker_errors[path] = nil
            elseif marker_errors[path] ~= tostring(err) then
                marker_errors[path] = tostring(err)
                log.error('%s', err)
            end
        end
    end
end
if MARKERS ~= nil then
    fio.mktree(MARKERS)
    fiber.create(function()
        fiber.name('markers')
        while true do
            local ok, err = pcall(sync_markers)
            if not ok then log.error('markers: %s', err) end
            fiber.sleep(0.1)
        end
    end)
end

-- ------------------------------------------------------------------ control API
local function need_model(ns)
    local m = models[ns]
    if m == nil then error(('no model for namespace %q'):format(tostring(ns)), 3) end
    return m
end

local function dump_model(m)
    local d = {
        namespace = m.namespace, bucket_count = m.bucket_count, bootstrapped = m.bootstrapped,
        failover = failover_params(m), config = m.config, calls = m.calls,
        lag = m.lag, upstream_status = m.upstream_status, recursive = m.recursive,
        drain_rate = m.drain_rate or drain_rate, default_lag = DEFAULT_LAG, lag_range = m.lag_range,
        state_provider = m.state_provider, failover_delay = m.failover_delay,
        failover_timeout_override = m.failover_timeout_override, recovery = m.recovery,
        membership_delay = m.membership_delay, config_as_stored = m.config_as_stored,
        faults = deepcopy(faults[m.namespace] or {}),
        replicasets = {}, servers = {},
    }
    for _, ru in ipairs(m.rs_order) do
        local rs = deepcopy(m.replicasets[ru])
        rs.master = leaders_order(m, ru)
        rs.active_leader = active_leader(m, ru)
        table.insert(d.replicasets, rs)
    end
    for _, u in ipairs(m.server_order) do
        local s = deepcopy(m.servers[u])
        s.alias = alias_of_uri(s.uri)
        s.status = server_status(m, s)
        table.insert(d.servers, s)
    end
    return d
end

local control = {}
control.serve = serve
control.unserve = unserve
function control.instances()
    local r = {}
    for path, inst in pairs(instances) do
        table.insert(r, {path = path, namespace = inst.namespace, alias = inst.alias,
            mode = fault_name(inst.namespace, inst.alias),
            sessions = (function() local n = 0 for _ in pairs(inst.sessions) do n = n + 1 end return n end)()})
    end
    table.sort(r, function(a, b) return a.path < b.path end)
    return r
end
function control.models()
    local r = {}
    for ns in pairs(models) do table.insert(r, ns) end
    table.sort(r)
    return r
end
-- The model of a namespace as plain data (a Lua table, acyclic).
function control.model(ns) return dump_model(need_model(ns)) end
-- The same as a JSON string.
function control.dump(ns) return json.encode(dump_model(need_model(ns))) end
-- The upstream lag (seconds, may be negative) that alias reports; nil: back
-- to the namespace's default.
function control.set_lag(ns, alias, seconds)
    if seconds ~= nil and seconds ~= box.NULL and tonumber(seconds) == nil then
        error('set_lag: seconds must be a number', 2)
    end
    need_model(ns).lag[alias] = tonumber(seconds)
    return true
end
-- Replicas without their own lag report one drawn uniformly from [lo, hi]
-- on every get_info (e.g. -0.07, 0.07); no arguments: back to DEFAULT_LAG.
function control.set_lag_range(ns, lo, hi)
    local m = model_of(ns)
    if lo == nil or lo == box.NULL then m.lag_range = nil return true end
    lo, hi = tonumber(lo), tonumber(hi)
    if lo == nil or hi == nil or hi < lo then error('set_lag_range: numbers lo <= hi are needed', 2) end
    m.lag_range = {lo, hi}
    return true
end
function control.set_upstream_status(ns, alias, status)
    need_model(ns).upstream_status[alias] = status
    return true
end
-- Per-instance faults, by (namespace, alias): set before the pod is served
-- or while it is, kept while it is not served (a restarted pod keeps
-- misbehaving) until cleared with set_fault(ns, alias, nil) or 'ok'.
--   hang (alias timeout)  the console accepts but never answers; calls to it
--                         from other instances time out; it is unreachable
--   garbage               the console answers a framed reply that is not YAML
--   empty {after_edit = true}
--                         admin_get_replicasets/admin_get_servers answer []
--                         (with after_edit: only once an edit has been
--                         applied in its namespace after the fault was set)
--   late {delay = 3}      every statement on its console runs after delay s
--   refuse {class = 'RemoteCallError', message = 'refused by fault injection'}
--                         every Cartridge call on its console returns nil, err
--   foreign {from_ns = ns, from_alias = alias}
--                         its console answers as that instance of that
--                         namespace (a plausible but wrong cluster); changes
--                         made through it go to that namespace's model
--   unreached             membership has not reached it: it answers from an
--                         empty config (admin_get_* give []), edits through it
--                         do not reach the cluster
local FAULTS = {ok = true, hang = true, timeout = true, garbage = true, empty = true, late = true,
    refuse = true, foreign = true, unreached = true}
local function set_fault(ns, alias, name, opts)
    if type(ns) ~= 'string' or type(alias) ~= 'string' then
        error('set_fault(ns, alias, fault, opts): namespace and alias are required', 3)
    end
    if name == box.NULL then name = nil end
    if name ~= nil and not FAULTS[name] then
        error(('unknown fault %q: one of ok, hang, timeout, garbage, empty, late, refuse, foreign, unreached')
            :format(tostring(name)), 3)
    end
    if opts ~= nil and type(opts) ~= 'table' then error('fault options must be a table', 3) end
    opts = deepcopy(opts or {})
    if name == 'late' and opts.delay ~= nil and (type(opts.delay) ~= 'number' or opts.delay < 0) then
        error('late: delay must be a non-negative number of seconds', 3)
    end
    if name == 'timeout' then name = 'hang' end
    faults[ns] = faults[ns] or {}
    faults[ns][alias] = (name ~= nil and name ~= 'ok') and {name = name, opts = opts} or nil
    note_reach(ns, alias)
    return true
end
function control.set_fault(ns, alias, name, opts)
    return set_fault(ns, alias, name, opts)
end
-- The fault of an instance ('ok' when none) and its options.
function control.fault(ns, alias)
    local f = fault_of(ns, alias)
    if f == nil then return 'ok' end
    return f.name, deepcopy(f.opts)
end
-- mode: set_fault for a served instance, with default options (kept for
-- the original modes 'ok', 'hang' and 'garbage').
function control.set_mode(ns, alias, mode)
    if type(mode) ~= 'string' or not FAULTS[mode] then
        error("mode must be 'ok', 'hang', 'timeout', 'garbage', 'empty', 'late', 'refuse', 'foreign' or 'unreached'", 2)
    end
    if instance_of(ns, alias) == nil then error(('%s/%s is not served'):format(ns, alias), 2) end
    return set_fault(ns, alias, mode)
end
-- Buckets per second the rebalancer moves: for one namespace, or the default.
function control.set_drain_rate(rate, ns)
    rate = tonumber(rate)
    if rate == nil or rate < 0 then error('rate must be a non-negative number', 2) end
    if ns ~= nil then model_of(ns).drain_rate = rate else drain_rate = rate end
    return true
end
function control.set_bucket_count(ns, n)
    local m = model_of(ns)
    if m.bootstrapped then error('bucket_count cannot change after vshard bootstrap', 2) end
    m.bucket_count = assert(tonumber(n), 'a number is needed')
    return true
end
-- Stateful failover's state provider: 'ok' (default) or 'unreachable' (also
-- 'bad_password', which Cartridge reports the same way): failover_promote
-- fails with StateProviderError "State provider unavailable", and the
-- coordinator appoints nobody (a gone leader stays the active one).
function control.set_state_provider(ns, state)
    if state ~= 'ok' and state ~= 'unreachable' and state ~= 'bad_password' then
        error("state must be 'ok', 'unreachable' or 'bad_password'", 2)
    end
    model_of(ns).state_provider = state
    return true
end
-- Failover (eventual, stateful, raft) notices a gone instance only after
-- failover_timeout (the failover params', or `timeout` if given) plus
-- `extra` seconds; until then it stays the master (unhealthy). nil: at once.
function control.set_failover_delay(ns, extra, timeout)
    local m = model_of(ns)
    if extra == nil or extra == box.NULL then
        m.failover_delay, m.failover_timeout_override = nil, nil
        return true
    end
    extra, timeout = tonumber(extra), timeout ~= box.NULL and tonumber(timeout) or nil
    if extra == nil or extra < 0 or (timeout ~= nil and timeout < 0) then
        error('set_failover_delay: non-negative seconds are needed', 2)
    end
    m.failover_delay, m.failover_timeout_override = extra, timeout
    return true
end
-- Seconds an instance that came back (served again, released from a hang)
-- is 'warning' (not healthy) and not electable. Default 0.
function control.set_recovery(ns, seconds)
    seconds = tonumber(seconds)
    if seconds == nil or seconds < 0 then error('set_recovery: non-negative seconds are needed', 2) end
    model_of(ns).recovery = seconds
    return true
end
-- Both as observed on real Cartridge: failover_timeout + 3 s to switch,
-- 2 s to recover (off: both back to 0).
function control.set_realistic_failover(ns, on)
    local m = model_of(ns)
    if on then
        m.failover_delay, m.failover_timeout_override, m.recovery = REALISTIC_FAILOVER_EXTRA, nil, REALISTIC_RECOVERY
    else
        m.failover_delay, m.failover_timeout_override, m.recovery = nil, nil, 0
    end
    return true
end
-- Seconds before membership reaches an unjoined instance of a namespace that
-- has a cluster (counted from when it is served, or from the first join);
-- until then it answers admin_get_* with [] . Default 0.
function control.set_membership_delay(ns, seconds)
    seconds = tonumber(seconds)
    if seconds == nil or seconds < 0 then error('set_membership_delay: non-negative seconds are needed', 2) end
    model_of(ns).membership_delay = seconds
    return true
end
-- true: config sections come back as Cartridge stores them, without map/seq
-- hints, so a section patched as {} reads back as [] through json.encode.
-- Default false (what was patched comes back as it was).
function control.set_config_as_stored(ns, yes)
    model_of(ns).config_as_stored = yes and true or false
    return true
end
function control.set_recursive(ns, yes)
    model_of(ns).recursive = yes and true or false
    return true
end
function control.calls(ns) return deepcopy(need_model(ns).calls) end
function control.reset_calls(ns) need_model(ns).calls = {} return true end
-- Bucket count per replica set alias, and their sum.
function control.buckets(ns)
    local m = need_model(ns)
    local r, total = {}, 0
    for _, ru in ipairs(m.rs_order) do
        local rs = m.replicasets[ru]
        if is_storage(rs) then
            r[rs.alias] = rs.buckets
            total = total + rs.buckets
        end
    end
    return r, total
end
-- Forget the model of a namespace (all namespaces without an argument);
-- served sockets stay served.
function control.reset(ns)
    if ns == nil then models, faults = {}, {} else models[ns], faults[ns] = nil, nil end
    return true
end
package.loaded['cartridge_double'] = control

local ok, err = pcall(console.listen, 'unix/:' .. CONTROL)
if not ok then
    log.error('cannot listen on the control socket %s: %s', CONTROL, err)
    os.exit(1)
end
log.info('cartridge double ready: control socket %s, markers %s', CONTROL, MARKERS or '(none)')

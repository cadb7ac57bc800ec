-- failover_get_params(), projected on the fields the operator manages.
-- Passwords never leave the instance: only their SHA-256 (hex), enough to
-- tell whether the one the operator holds is in force.
local digest = require('digest')
local function hashed(v)
    if type(v) ~= 'string' then return nil end
    return digest.sha256_hex(v)
end
local p = call('failover_get_params')
local out = {
    mode = str(p.mode) or 'disabled',
    state_provider = str(p.state_provider),
    failover_timeout = num(p.failover_timeout),
}
-- Not `cond and v or nil`: that drops `false`.
if type(p.fencing_enabled) == 'boolean' then
    out.fencing_enabled = p.fencing_enabled
end
local tp = p.tarantool_params
if type(tp) == 'table' then
    out.tarantool_params = map({uri = str(tp.uri), password_sha256 = hashed(tp.password)})
end
local ep = p.etcd2_params
if type(ep) == 'table' then
    local endpoints = seq()
    for _, e in ipairs(type(ep.endpoints) == 'table' and ep.endpoints or {}) do
        if type(e) == 'string' then table.insert(endpoints, e) end
    end
    out.etcd2_params = map({
        endpoints = endpoints,
        prefix = str(ep.prefix),
        lock_delay = num(ep.lock_delay),
        username = str(ep.username),
        password_sha256 = hashed(ep.password),
    })
end
return json.encode(out)

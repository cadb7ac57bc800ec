-- failover_get_params(), projected on the fields the operator manages.
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
    out.tarantool_params = map({uri = str(tp.uri), password = str(tp.password)})
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
        password = str(ep.password),
    })
end
return json.encode(out)

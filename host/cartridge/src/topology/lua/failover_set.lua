-- failover_set_params(args): absent fields are left as they are.
-- Cartridge replaces tarantool_params and etcd2_params whole, and requires a
-- stateboard password: a password the operator does not know (no
-- passwordSecretRef, so none in args) is taken from the current settings
-- here, inside the instance, so it is never overwritten and never travels.
-- With none set yet, the stateboard's is '' (Cartridge requires a string).
local empty = {tarantool_params = '', etcd2_params = nil}
for _, key in ipairs({'tarantool_params', 'etcd2_params'}) do
    local given = args[key]
    if type(given) == 'table' and given.password == nil then
        local current = call('failover_get_params')[key]
        if type(current) == 'table' and type(current.password) == 'string' then
            given.password = current.password
        else
            given.password = empty[key]
        end
    end
end
call('failover_set_params', args)
return json.encode(true)

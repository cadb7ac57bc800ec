-- admin_bootstrap_vshard(); Cartridge's "already bootstrapped" is a result,
-- not an error (bootstrap is repeated after every operator restart).
local fn = cartridge.admin_bootstrap_vshard
if type(fn) ~= 'function' then
    error('cartridge.admin_bootstrap_vshard is not available', 0)
end
local ok, err = fn()
if ok then
    return json.encode({bootstrapped = true})
end
if err ~= nil then
    local inner = type(err) == 'table' and str(err.err) or nil
    local text = errstr(err)
    -- cartridge/roles/vshard-router.lua: e_bootstrap_vshard:new("already bootstrapped")
    if (inner ~= nil and inner:lower():find('already bootstrapped', 1, true))
        or text:lower():find('already bootstrapped', 1, true) then
        return json.encode({bootstrapped = false})
    end
    error('admin_bootstrap_vshard: ' .. text, 0)
end
error('admin_bootstrap_vshard returned neither a result nor an error', 0)

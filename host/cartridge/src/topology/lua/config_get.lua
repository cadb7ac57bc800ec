-- config_get_readonly(section) for each named section; absent ones are left
-- out.
local out = map()
for _, name in ipairs(args.sections or {}) do
    local value = call('config_get_readonly', name)
    if value ~= nil then
        out[name] = value
    end
end
return json.encode(out)

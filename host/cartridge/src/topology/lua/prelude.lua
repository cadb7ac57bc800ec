-- Prepended to every chunk the operator runs (see topology/cartridge.rs).
-- Chunks return ONE JSON string: admin_get_* results hold cyclic references
-- and YAML of raw Cartridge objects is neither stable nor small.
local json = require('json')

local args = ...

local ok_cartridge, cartridge = pcall(require, 'cartridge')
if not ok_cartridge then
    error('Cartridge is not loaded on this instance: ' .. tostring(cartridge), 0)
end

-- json.encode writes an empty table as [] unless told otherwise.
local function seq(t) return setmetatable(t or {}, {__serialize = 'seq'}) end
local function map(t) return setmetatable(t or {}, {__serialize = 'map'}) end

-- box.NULL (msgpack/json nil) == nil, but type() says 'cdata': normalize.
local function str(v)
    if v == nil then return nil end
    if type(v) == 'string' then return v end
    return nil
end
local function num(v)
    if v == nil then return nil end
    if type(v) == 'number' then return v end
    if type(v) == 'cdata' then return tonumber(v) end
    return nil
end

-- An error object's short text: Cartridge's errors carry `str`
-- ("ClassName: message"); their tostring() appends a stack trace.
local function errstr(err)
    if type(err) == 'table' and type(err.str) == 'string' then
        return err.str
    end
    return tostring(err)
end

-- Calls a Cartridge admin function; its `nil, err` becomes a Lua error, so
-- it comes back as a console error naming the call.
local function call(name, ...)
    local fn = cartridge[name]
    if type(fn) ~= 'function' then
        error('cartridge.' .. name .. ' is not available', 0)
    end
    local res, err = fn(...)
    if res == nil and err ~= nil then
        error(name .. ': ' .. errstr(err), 0)
    end
    return res
end

#!/usr/bin/env tarantool
-- Tests of the Cartridge double, through real console sockets, as the
-- operator reaches it. Run by run-tests.sh (make test-tarantool), which starts
-- the double; arguments: CONTROL_SOCKET SCRATCH_DIR MARKERS_DIR.
-- Waits poll with a deadline that only guards against hangs; no test asserts
-- how long anything takes.

local fiber = require('fiber')
local fio = require('fio')
local json = require('json')
local netbox = require('net.box')
local socket = require('socket')
local yaml = require('yaml')

local digest = require('digest')

local CONTROL, DIR, MARKERS = arg[1], arg[2], arg[3]
assert(CONTROL and DIR and MARKERS, 'usage: tarantool test_double.lua CONTROL_SOCKET SCRATCH_DIR MARKERS_DIR')
local DEADLINE = tonumber(os.getenv('DOUBLE_TEST_TIMEOUT')) or 30

-- ------------------------------------------------------------------ helpers
local function fail(fmt, ...) error(string.format(fmt, ...), 2) end
local function eq(got, want, what)
    if got ~= want then
        error(string.format('%s: got %s, want %s', what or 'value', json.encode(got), json.encode(want)), 2)
    end
end

local conns = {}
local function console(path)
    if conns[path] == nil then
        local c = netbox.connect(path, {console = true, connect_timeout = 10})
        if not c:is_connected() then fail('cannot connect to %s: %s', path, tostring(c.error)) end
        conns[path] = c
    end
    return conns[path]
end
-- Runs a chunk on a console, returns the decoded YAML list of results;
-- a Lua error in the chunk fails the test with its message.
local function run(path, code)
    local out = console(path):eval(code)
    local r = yaml.decode(out)
    if type(r) == 'table' and type(r[1]) == 'table' and r[1].error ~= nil and #r == 1 then
        error(('%s: Lua error: %s'):format(path, tostring(r[1].error)), 2)
    end
    return r
end
local function ctl(code) return run(CONTROL, "local d = require('cartridge_double') " .. code) end

local NS_A, NS_B = 'ns-a', 'ns-b'
local function sock(ns, alias) return fio.pathjoin(DIR, ns .. '-' .. alias .. '.control') end
local function uri(ns, alias, svc) return ('%s.%s.%s.svc.cluster.local:3301'):format(alias, svc, ns) end
local function serve(ns, alias) ctl(("return d.serve(%q, %q, %q)"):format(sock(ns, alias), ns, alias)) end
local function unserve(ns, alias)
    ctl(("return d.unserve(%q)"):format(sock(ns, alias)))
    -- Its sessions are closed: the next run() connects again.
    local c = conns[sock(ns, alias)]
    if c ~= nil then pcall(c.close, c) conns[sock(ns, alias)] = nil end
end

-- Deterministic uuids as the operator makes them (any valid uuid will do).
local n = 0
local function uuid() n = n + 1 return ('00000000-0000-4000-8000-%012d'):format(n) end
local U = {}
for _, k in ipairs({'rs_router', 'rs_s1', 'rs_s2', 'rs_s3', 'router-0', 's1-0', 's1-1', 's2-0', 's3-0', 'b_rs', 'b_router-0'}) do
    U[k] = uuid()
end

local function wait(what, fn)
    local deadline = fiber.clock() + DEADLINE
    while true do
        local v = fn()
        if v then return v end
        if fiber.clock() > deadline then fail('gave up waiting for %s after %ss', what, DEADLINE) end
        fiber.sleep(0.05)
    end
end

-- The operator's projection: json.encode of plain fields, never the raw objects.
local PROJECT_RS = [[
local out = {}
for _, rs in ipairs(require('cartridge').admin_get_replicasets()) do
    local servers = {}
    for _, s in ipairs(rs.servers) do
        table.insert(servers, {uuid = s.uuid, alias = s.alias, uri = s.uri, status = s.status, priority = s.priority})
    end
    out[rs.alias] = {uuid = rs.uuid, roles = rs.roles, weight = rs.weight, master = rs.master.alias,
        active_master = rs.active_master.alias, status = rs.status, servers = servers}
end
return require('json').encode(out)
]]
local function replicasets(ns, alias) return json.decode(run(sock(ns, alias), PROJECT_RS)[1]) end
local function buckets(ns)
    local r = ctl(("return d.buckets(%q)"):format(ns))
    return r[1], r[2]
end

-- The operator's own chunks (host/cartridge/src/topology/lua/), assembled and sent as
-- the operator does (console/protocol.rs): prelude + chunk, base64, args as
-- JSON. Returns the decoded JSON reply and the raw JSON, or nil and the
-- console's error message.
local REPO = fio.abspath(fio.pathjoin(fio.dirname(fio.abspath(arg[0])), '..', '..'))
local function read(path)
    local fh = assert(io.open(path, 'r'))
    local text = fh:read('*a')
    fh:close()
    return text
end
local function b64(text) return digest.base64_encode(text, {nowrap = true}) end
local function op(path, name, args)
    local dir = fio.pathjoin(REPO, 'host', 'cartridge', 'src', 'topology', 'lua')
    local code = read(fio.pathjoin(dir, 'prelude.lua')) .. '\n' .. read(fio.pathjoin(dir, name .. '.lua'))
    local stmt = ("return assert(loadstring(require('digest').base64_decode('%s'), '=%s'))" ..
        "(require('json').decode(require('digest').base64_decode('%s')))\n")
        :format(b64(code), name, b64(json.encode(args or setmetatable({}, {__serialize = 'map'}))))
    local r = yaml.decode(console(path):eval(stmt))
    if type(r) == 'table' and type(r[1]) == 'table' and r[1].error ~= nil then return nil, r[1].error end
    return json.decode(r[1]), r[1]
end
-- The operator's projection of one replica set, by alias, with servers by alias.
local function op_replicasets(path)
    local list, raw = op(path, 'replicasets')
    assert(list, raw)
    local by = {}
    for _, rs in ipairs(list) do
        rs.by_alias = {}
        for _, s in ipairs(rs.servers) do rs.by_alias[s.alias] = s end
        by[rs.alias] = rs
    end
    return by, raw
end

-- Serves the pods of `layout` ({{rs = alias, roles = {...}, pods = {...}}, ...})
-- and joins them all in one edit through the first pod; returns uuids by
-- replica set alias and pod name.
local function make_cluster(ns, layout)
    local ids, rss, via = {}, {}, nil
    for _, r in ipairs(layout) do
        ids[r.rs] = uuid()
        local joins = {}
        for _, p in ipairs(r.pods) do
            serve(ns, p)
            via = via or p
            ids[p] = uuid()
            table.insert(joins, {uri = uri(ns, p, r.rs), uuid = ids[p]})
        end
        table.insert(rss, {uuid = ids[r.rs], alias = r.rs, roles = r.roles, join_servers = joins})
    end
    local r = run(sock(ns, via), ("local t, err = require('cartridge').admin_edit_topology(require('json').decode(%q))"
        .. " return t ~= nil, tostring(err)"):format(json.encode({replicasets = rss})))
    eq(r[1], true, ('join in %s (%s)'):format(ns, tostring(r[2])))
    return ids
end
local function ctlf(fmt, ...) return ctl(fmt:format(...)) end

-- ------------------------------------------------------------------ tests
local tests = {}
local function test(name, fn) table.insert(tests, {name = name, fn = fn}) end

test('join every instance of several replica sets in one call', function()
    for _, a in ipairs({'router-0', 's1-0', 's1-1', 's2-0', 's3-0'}) do serve(NS_A, a) end
    ctl(("return d.set_bucket_count(%q, 300)"):format(NS_A))
    local r = run(sock(NS_A, 'router-0'), ([[
local topology, err = require('cartridge').admin_edit_topology({replicasets = {
  {uuid = %q, alias = 'router', roles = {'vshard-router'}, join_servers = {{uri = %q, uuid = %q}}},
  {uuid = %q, alias = 's1', roles = {'vshard-storage'}, join_servers = {{uri = %q, uuid = %q}, {uri = %q, uuid = %q}}},
  {uuid = %q, alias = 's2', roles = {'vshard-storage'}, join_servers = {{uri = %q, uuid = %q}}},
}})
if topology == nil then return tostring(err) end
return #topology.replicasets, #topology.servers]]):format(
        U.rs_router, uri(NS_A, 'router-0', 'router'), U['router-0'],
        U.rs_s1, uri(NS_A, 's1-0', 's1'), U['s1-0'], uri(NS_A, 's1-1', 's1'), U['s1-1'],
        U.rs_s2, uri(NS_A, 's2-0', 's2'), U['s2-0']))
    eq(r[1], 3, 'replica sets returned')
    eq(r[2], 4, 'servers returned')
    local rs = replicasets(NS_A, 's1-1') -- any instance of the cluster sees the topology
    eq(rs.s1.master, 's1-0', 'master = first joined')
    eq(rs.s1.servers[2].alias, 's1-1', 'join appends to the priority')
    eq(rs.s1.weight, 1, 'a new storage before bootstrap gets weight 1')
    eq(rs.router.weight, nil, 'a router has no weight')
    eq(rs.s1.servers[1].status, 'healthy', 'status')
end)

test('failover_priority moves the master; an unknown leader is refused', function()
    local r = run(sock(NS_A, 'router-0'), ([[
return require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, failover_priority = {%q}}}}) ~= nil]])
        :format(U.rs_s1, U['s1-1']))
    eq(r[1], true, 'edit')
    local rs = replicasets(NS_A, 'router-0')
    eq(rs.s1.master, 's1-1', 'master')
    eq(rs.s1.servers[1].alias, 's1-1', 'first in priority')
    eq(rs.s1.servers[2].priority, 2, 'priority of the old master')
    r = run(sock(NS_A, 'router-0'), ([[
local _, err = require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, failover_priority = {%q}}}})
return err.class_name, err.err]]):format(U.rs_s1, U['s2-0']))
    eq(r[1], 'Invalid cluster topology config', 'class')
    eq(r[2], ('replicasets[%s] leader %q belongs to another replicaset'):format(U.rs_s1, U['s2-0']), 'message')
end)

test('admin_get_* objects are cyclic: json.encode of them fails', function()
    local r = run(sock(NS_A, 'router-0'), [[
local c = require('cartridge')
local rs = c.admin_get_replicasets()[2]
local s = c.admin_get_servers()[1]
return pcall(require('json').encode, rs), rs.servers[1].replicaset == rs, rs.master == rs.servers[1],
    s.replicaset.servers[s.priority] == s, pcall(require('json').encode, s)]])
    -- (a call inside a return list gives one value: r[1] is pcall's status)
    eq(r[1], false, 'json.encode of a replica set')
    eq(r[2], true, 'server.replicaset is its replica set')
    eq(r[3], true, 'master is a server object')
    eq(r[4], true, 'servers of the replica set of a server hold it')
    eq(r[5], false, 'json.encode of a server')
end)

test('bootstrap distributes the buckets by weight, once', function()
    local r = run(sock(NS_A, 'router-0'), "return require('cartridge').admin_bootstrap_vshard()")
    eq(r[1], true, 'bootstrap')
    local b, total = buckets(NS_A)
    eq(b.s1, 150, 's1') eq(b.s2, 150, 's2') eq(total, 300, 'total')
    r = run(sock(NS_A, 'router-0'), [[
local ok, err = require('cartridge').admin_bootstrap_vshard()
return ok, err.class_name, err.err, tostring(err)]])
    eq(r[1], nil, 'second bootstrap')
    eq(r[2], 'Bootstrapping vshard failed', 'class')
    eq(r[3], 'already bootstrapped', 'message')
    eq(r[4], 'Bootstrapping vshard failed: already bootstrapped', 'tostring')
    r = run(sock(NS_A, 'router-0'), ("return require('cartridge.lua-api.stat').get_stat(%q).vshard_buckets_count")
        :format(uri(NS_A, 's1-0', 's1')))
    eq(r[1], 150, 'get_stat of a replica')
end)

test('weight 0 drains to zero with the total conserved; expel refused until then', function()
    local router = sock(NS_A, 'router-0')
    local expel = ("local _, err = require('cartridge').admin_edit_topology({servers = {{uuid = %q, expelled = true}}})"
        .. " return err and err.err"):format(U['s2-0'])
    eq(run(router, expel)[1], ("replicasets[%s] is a vshard-storage which can't be removed"):format(U.rs_s2), 'expel with weight')
    ctl(("return d.set_drain_rate(0, %q)"):format(NS_A)) -- hold the buckets where they are
    local r = run(router, ("return require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, weight = 0}}}) ~= nil")
        :format(U.rs_s2))
    eq(r[1], true, 'weight 0')
    eq(run(router, expel)[1], ("replicasets[%s] rebalancing isn't finished yet"):format(U.rs_s2), 'expel with buckets')
    ctl(("return d.set_drain_rate(3000, %q)"):format(NS_A))
    wait('s2 drained', function()
        local b, total = buckets(NS_A)
        eq(total, 300, 'total while draining')
        eq(b.s1 + b.s2, 300, 'sum while draining')
        return b.s2 == 0
    end)
    eq(run(router, expel)[1], nil, 'expel once drained')
    local rs = replicasets(NS_A, 'router-0')
    eq(rs.s2, nil, 'the replica set of the last expelled server is gone')
    eq(select(2, buckets(NS_A)), 300, 'total after expel')
end)

test('a new storage gets weight 0 after bootstrap and fills up when given weight', function()
    local router = sock(NS_A, 'router-0')
    local r = run(router, ([[
return require('cartridge').admin_edit_topology({replicasets = {
  {uuid = %q, alias = 's3', roles = {'vshard-storage'}, join_servers = {{uri = %q, uuid = %q}}}}}).replicasets[1].weight]])
        :format(U.rs_s3, uri(NS_A, 's3-0', 's3'), U['s3-0']))
    eq(r[1], 0, 'weight of a storage joined after bootstrap')
    run(router, ("return require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, weight = 2}}}) ~= nil"):format(U.rs_s3))
    wait('s3 filled', function()
        local b, total = buckets(NS_A)
        eq(total, 300, 'total while filling')
        return b.s3 == 200 and b.s1 == 100
    end)
end)

test('joining a pod whose socket is not served fails like a probe', function()
    local r = run(sock(NS_A, 'router-0'), ([[
local _, err = require('cartridge').admin_edit_topology({replicasets = {
  {uuid = %q, join_servers = {{uri = %q, uuid = %q}}}}})
return err.class_name, err.err]]):format(U.rs_s3, uri(NS_A, 'ghost-0', 's3'), uuid()))
    eq(r[1], 'ProbeError', 'class')
    eq(r[2], ('Probe %q failed: no response'):format(uri(NS_A, 'ghost-0', 's3')), 'message')
    r = run(sock(NS_A, 'router-0'), ("return require('cartridge').admin_probe_server(%q)"):format(uri(NS_A, 's3-0', 's3')))
    eq(r[1], true, 'probe of a served pod')
end)

test('a gone pod is unreachable; eventual failover elects the next; back with its identity', function()
    local router = sock(NS_A, 'router-0')
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'eventual'})")[1], true, 'eventual')
    unserve(NS_A, 's1-1')
    local rs = replicasets(NS_A, 'router-0')
    eq(rs.s1.servers[1].status, 'unreachable', 'status of the gone pod')
    eq(rs.s1.status, 'unhealthy', 'replica set status')
    eq(rs.s1.master, 's1-1', 'master (the configured leader)')
    eq(rs.s1.active_master, 's1-0', 'active master')
    local r = run(router, ("return require('cartridge.lua-api.boxinfo').get_info(%q)"):format(uri(NS_A, 's1-1', 's1')))
    eq(r[1], nil, 'get_info of a gone pod')
    eq(r[2].class_name, 'NetboxCallError', 'its error')
    r = run(router, ("return require('cartridge.lua-api.boxinfo').get_info(%q)"):format(uri(NS_A, 's1-0', 's1')))
    eq(r[1].general.ro, false, 'the new active master is rw')
    eq(r[1].replication.replication_info[1].upstream_status, 'disconnected', 'upstream to the gone pod')
    serve(NS_A, 's1-1')
    rs = replicasets(NS_A, 'router-0')
    eq(rs.s1.servers[1].status, 'healthy', 'back')
    eq(rs.s1.servers[1].uuid, U['s1-1'], 'same identity')
    eq(rs.s1.active_master, 's1-1', 'eventual failover returns to the first in priority')
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'disabled'})")[1], true, 'disabled')
end)

test('replication lag is reported as set', function()
    ctl(("return d.set_lag(%q, 's1-0', 2.5)"):format(NS_A))
    local r = run(sock(NS_A, 'router-0'), ([[
local info = require('cartridge.lua-api.boxinfo').get_info(%q)
for _, e in ipairs(info.replication.replication_info) do
  if e.uuid == %q then return e.upstream_lag, e.upstream_status, info.general.instance_uuid, info.general.ro end
end]]):format(uri(NS_A, 's1-0', 's1'), U['s1-1']))
    eq(r[1], 2.5, 'lag') eq(r[2], 'follow', 'status') eq(r[3], U['s1-0'], 'instance_uuid') eq(r[4], true, 'replica is ro')
end)

test('failover params are validated like Cartridge', function()
    local router = sock(NS_A, 'router-0')
    local function set(opts)
        local r = run(router, ("local ok, err = require('cartridge').failover_set_params(%s) return ok, err and err.err"):format(opts))
        return r[1], r[2]
    end
    local ok, err = set("{mode = 'stateful'}")
    eq(ok, nil, 'stateful without provider') eq(err, 'topology_new.failover missing state_provider for mode "stateful"', 'message')
    ok, err = set("{mode = 'stateful', state_provider = 'tarantool'}")
    eq(err, 'topology_new.failover missing tarantool_params', 'tarantool without params')
    ok, err = set("{mode = 'sometimes'}")
    eq(err, 'topology_new.failover unknown mode "sometimes"', 'unknown mode')
    ok, err = set("{mode = 'stateful', state_provider = 'etcd2', etcd2_params = {prefix = '/c'}, failover_timeout = 7}")
    eq(ok, true, 'stateful with etcd2')
    local r = run(router, "local p = require('cartridge').failover_get_params() return p.mode, p.state_provider, p.failover_timeout, p.etcd2_params.prefix, p.fencing_enabled")
    eq(r[1], 'stateful') eq(r[2], 'etcd2') eq(r[3], 7) eq(r[4], '/c') eq(r[5], false)
    local bad = run(router, "return pcall(require('cartridge').failover_set_params, {mode = 'eventual', bogus = 1})")
    eq(bad[1], false, 'an unknown option raises')
    eq(set("{mode = 'disabled'}"), true, 'back to disabled')
end)

test('stateful failover: the priority does not move the active master, failover_promote does', function()
    local router = sock(NS_A, 'router-0')
    local function promote(rs, u)
        local r = run(router, ("local ok, err = require('cartridge').failover_promote({[%q] = %q}) return ok, err and err.class_name, err and err.err"):format(rs, u))
        return r[1], r[2], r[3]
    end
    local ok, class, err = promote(U.rs_s1, U['s1-0'])
    eq(ok, nil, 'refused without stateful failover') eq(class, 'PromoteLeaderError', 'class')
    eq(err, 'Promotion only works with stateful failover', 'message')
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'stateful', state_provider = 'etcd2', etcd2_params = {prefix = '/c'}})")[1], true, 'stateful')
    local before = replicasets(NS_A, 'router-0').s1.active_master
    local other = before == 's1-0' and 's1-1' or 's1-0'
    run(router, ("return require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, failover_priority = {%q}}}}) ~= nil")
        :format(U.rs_s1, U[other]))
    eq(replicasets(NS_A, 'router-0').s1.active_master, before, 'the appointed master stays')
    eq(promote(U.rs_s1, U[other]), true, 'promote')
    eq(replicasets(NS_A, 'router-0').s1.active_master, other, 'promoted')
    ok, class, err = promote(U.rs_s1, U['s2-0'])
    eq(ok, nil, 'a server of another replica set') eq(err, ('Server %q doesn\'t belong to replicaset %q'):format(U['s2-0'], U.rs_s1), 'message')
    -- As the other tests expect it.
    run(router, ("return require('cartridge').admin_edit_topology({replicasets = {{uuid = %q, failover_priority = {%q}}}}) ~= nil")
        :format(U.rs_s1, U[before]))
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'disabled'})")[1], true, 'disabled')
end)

test('config_patch_clusterwide and config_get_readonly', function()
    local router = sock(NS_A, 'router-0')
    eq(run(router, "return require('cartridge').config_patch_clusterwide({app = {answer = 42}, other = 'text'})")[1], true, 'patch')
    local r = run(sock(NS_A, 's1-0'), ([[
local c = require('cartridge')
return c.config_get_readonly('app').answer, c.config_get_readonly('other'), c.config_get_readonly().vshard.bucket_count,
  c.config_get_readonly('topology').replicasets[%q] ~= nil]]):format(U.rs_s1))
    eq(r[1], 42, 'section') eq(r[2], 'text', 'string section') eq(r[3], 300, 'vshard section') eq(r[4], true, 'topology section')
    eq(run(router, "return require('cartridge').config_patch_clusterwide({app = box.NULL})")[1], true, 'delete')
    eq(run(router, "return require('cartridge').config_get_readonly('app')")[1], nil, 'deleted')
    eq(run(router, "return require('cartridge').config_get_readonly('other')")[1], 'text', 'others kept')
end)

test('the instance doing a change cannot expel itself', function()
    local r = run(sock(NS_A, 'router-0'), ([[
local _, err = require('cartridge').admin_edit_topology({servers = {{uuid = %q, expelled = true}}})
return err.err]]):format(U['router-0']))
    eq(r[1], ('Current instance %q can not be expelled'):format(uri(NS_A, 'router-0', 'router')), 'message')
end)

test('a hung instance accepts but does not answer until released', function()
    ctl(("return d.set_mode(%q, 's1-0', 'hang')"):format(NS_A))
    local s = socket.tcp_connect('unix/', sock(NS_A, 's1-0'))
    assert(s, 'connect')
    assert(s:read(128, 10), 'greeting')
    s:write("return 'answer'\n")
    -- No answer while hung. (A bound, not a timing assert: a working double
    -- never answers here; a broken one answers at once.)
    eq(s:read('\n...\n', 0.5), nil, 'answer while hung')
    local r = run(sock(NS_A, 'router-0'), ("return require('cartridge.lua-api.stat').get_stat(%q)"):format(uri(NS_A, 's1-0', 's1')))
    eq(r[1], nil, 'get_stat of a hung instance') eq(r[2].err, ('%q: timed out'):format(uri(NS_A, 's1-0', 's1')), 'its error')
    eq(replicasets(NS_A, 'router-0').s1.servers[2].status, 'unreachable', 'a hung instance is unreachable')
    ctl(("return d.set_mode(%q, 's1-0', 'ok')"):format(NS_A))
    local out = s:read('\n...\n', DEADLINE)
    eq(out and yaml.decode(out)[1], 'answer', 'the pending statement is answered once released')
    s:close()
end)

test('garbage mode answers something that is not YAML', function()
    ctl(("return d.set_mode(%q, 's1-0', 'garbage')"):format(NS_A))
    local out = console(sock(NS_A, 's1-0')):eval('return 1')
    eq(pcall(yaml.decode, out), false, 'YAML decode of the answer')
    ctl(("return d.set_mode(%q, 's1-0', 'ok')"):format(NS_A))
    eq(run(sock(NS_A, 's1-0'), 'return 1')[1], 1, 'answers again')
end)

test('namespaces are separate clusters', function()
    serve(NS_B, 'router-0')
    local b = sock(NS_B, 'router-0')
    eq(#run(b, "return require('cartridge').admin_get_servers()")[1], 0, 'servers of ns-b before join')
    local r = run(b, ([[
local _, err = require('cartridge').admin_edit_topology({replicasets = {
  {uuid = %q, roles = {'vshard-router'}, join_servers = {{uri = %q, uuid = %q}, {uri = %q, uuid = %q}}}}})
return err.class_name]]):format(U.b_rs, uri(NS_B, 'router-0', 'router'), U['b_router-0'], uri(NS_B, 's1-0', 's1'), uuid()))
    eq(r[1], 'ProbeError', "a pod of ns-a is not reachable from ns-b")
    r = run(b, ([[return require('cartridge').admin_edit_topology({replicasets = {
  {uuid = %q, alias = 'router', roles = {'vshard-router'}, join_servers = {{uri = %q, uuid = %q}}}}}) ~= nil]])
        :format(U.b_rs, uri(NS_B, 'router-0', 'router'), U['b_router-0']))
    eq(r[1], true, 'join in ns-b')
    eq(#run(b, "return require('cartridge').admin_get_servers()")[1], 1, 'servers of ns-b')
    -- router-0, s1-0, s1-1, s3-0 (s2-0 was expelled)
    eq(#run(sock(NS_A, 'router-0'), "return require('cartridge').admin_get_servers()")[1], 4, 'servers of ns-a')
    local models = ctl('return d.models()')[1]
    eq(models[1], NS_A) eq(models[2], NS_B)
end)

test('the first edit need not list the caller: it stays unconfigured and proxies', function()
    serve('ns-c', 'x-0')
    serve('ns-c', 'y-0')
    local x = sock('ns-c', 'x-0')
    local r = run(x, ([[
local topology, err = require('cartridge').admin_edit_topology({replicasets = {
  {alias = 'y', roles = {}, join_servers = {{uri = %q}}}}})
return topology ~= nil, tostring(err)]]):format(uri('ns-c', 'y-0', 'y')))
    eq(r[1], true, 'an edit through x-0 that does not join it')
    local servers = run(x, "return require('cartridge').admin_get_servers()")[1]
    eq(#servers, 1, 'x-0 sees the cluster (proxied)')
    eq(servers[1].alias, 'y-0', 'and it holds y-0 only')
    eq(run(x, "return require('cartridge.lua-api.stat').get_stat()")[1], nil, 'x-0 is not configured')
    -- Through its own console (proxied) x-0 can join itself later.
    r = run(x, ([[
return require('cartridge').admin_edit_topology({replicasets = {
  {alias = 'x', roles = {}, join_servers = {{uri = %q}}}}}) ~= nil]]):format(uri('ns-c', 'x-0', 'x')))
    eq(r[1], true, 'x-0 joins itself')
    eq(#run(x, "return require('cartridge').admin_get_servers()")[1], 2, 'both joined')
end)

test('calls are counted per namespace', function()
    ctl(("return d.reset_calls(%q)"):format(NS_A))
    eq(next(ctl(("return d.calls(%q)"):format(NS_A))[1]), nil, 'no calls after reset')
    run(sock(NS_A, 'router-0'), "return #require('cartridge').admin_get_servers()")
    local calls = ctl(("return d.calls(%q)"):format(NS_A))[1]
    eq(calls.admin_get_servers, 1, 'admin_get_servers')
    eq(calls.admin_get_replicasets, nil, 'others')
end)

test('failover_promote fails while the state provider is unreachable; the priority edit stays', function()
    local ns = 'ns-p'
    local ids = make_cluster(ns, {
        {rs = 'router', roles = {'vshard-router'}, pods = {'router-0'}},
        {rs = 's1', roles = {'vshard-storage'}, pods = {'s1-0', 's1-1'}},
    })
    local router = sock(ns, 'router-0')
    local promote_args = {replicaset = ids.s1, instance = ids['s1-1']}
    -- Eventual: the operator's chunk does not call failover_promote at all.
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'eventual'})")[1], true, 'eventual')
    local v, raw = op(router, 'promote', promote_args)
    eq(raw, 'false', 'promote chunk under eventual failover')
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'stateful', state_provider = 'etcd2'," ..
        " etcd2_params = {prefix = '/p'}})")[1], true, 'stateful')
    eq(op_replicasets(router).s1.master, ids['s1-0'], 'active master before')
    ctlf("return d.set_state_provider(%q, 'unreachable')", ns)
    -- The operator first edits the priority, then promotes.
    eq(op(router, 'edit', {replicasets = {{uuid = ids.s1, failover_priority = {ids['s1-1']}}}}), true, 'priority edit')
    local r = run(router, ([[
local ok, err = require('cartridge').failover_promote({[%q] = %q}, {force_inconsistency = false})
return ok, err.class_name, err.err, tostring(err)]]):format(ids.s1, ids['s1-1']))
    eq(r[1], nil, 'promote') eq(r[2], 'StateProviderError', 'class')
    eq(r[3], 'State provider unavailable', 'message')
    eq(r[4], 'StateProviderError: State provider unavailable', 'tostring')
    v, raw = op(router, 'promote', promote_args)
    eq(v, nil, 'promote chunk')
    eq(raw, 'failover_promote: StateProviderError: State provider unavailable', 'its console error')
    local rs = replicasets(ns, 'router-0')
    eq(rs.s1.servers[1].alias, 's1-1', 'the priority edit stays committed')
    eq(rs.s1.active_master, 's1-0', 'the active master did not move')
    -- Without its state provider the coordinator appoints nobody.
    unserve(ns, 's1-0')
    eq(replicasets(ns, 'router-0').s1.active_master, 's1-0', 'a gone leader stays appointed')
    serve(ns, 's1-0')
    ctlf("return d.set_state_provider(%q, 'ok')", ns)
    v, raw = op(router, 'promote', promote_args)
    eq(raw, 'true', 'promote chunk with the state provider back')
    eq(replicasets(ns, 'router-0').s1.active_master, 's1-1', 'promoted')
    eq(pcall(ctl, "return d.set_state_provider('ns-p', 'sometimes')"), false, 'an unknown state is refused')
end)

test('buckets move at a real rate set per namespace; expel refused with the real text until drained', function()
    local ns = 'ns-d'
    ctlf("return d.set_bucket_count(%q, 120)", ns)
    local ids = make_cluster(ns, {
        {rs = 'router', roles = {'vshard-router'}, pods = {'router-0'}},
        {rs = 's1', roles = {'vshard-storage'}, pods = {'s1-0'}},
        {rs = 's2', roles = {'vshard-storage'}, pods = {'s2-0', 's2-1'}},
    })
    local router = sock(ns, 'router-0')
    eq(run(router, "return require('cartridge').admin_bootstrap_vshard()")[1], true, 'bootstrap')
    eq(ctlf("return d.model(%q).drain_rate", ns)[1], 3000, 'the default rate')
    ctlf("return d.set_drain_rate(12, %q)", ns)
    eq(ctlf("return d.model(%q).drain_rate", ns)[1], 12, 'a real rate for this namespace')
    eq(ctlf("return d.model(%q).drain_rate", NS_A)[1], 3000, 'other namespaces keep theirs')
    local started = fiber.clock()
    eq(op(router, 'edit', {replicasets = {{uuid = ids.s2, weight = 0}}}), true, 'weight 0')
    local r = run(router, ([[
local _, err = require('cartridge').admin_edit_topology({servers = {{uuid = %q, expelled = true}, {uuid = %q, expelled = true}}})
return tostring(err)]]):format(ids['s2-0'], ids['s2-1']))
    eq(r[1], ("ValidateConfigError: replicasets[%s] rebalancing isn't finished yet"):format(ids.s2), 'expel while draining')
    local _, raw = op(router, 'edit', {expel = {ids['s2-0'], ids['s2-1']}})
    eq(raw, ("admin_edit_topology: ValidateConfigError: replicasets[%s] rebalancing isn't finished yet"):format(ids.s2),
        'the same through the operator\'s chunk')
    wait('some buckets moved', function() return buckets(ns).s2 < 60 end)
    fiber.sleep(0.5)
    local b, total = buckets(ns)
    local elapsed = fiber.clock() - started
    eq(total, 120, 'total while draining')
    -- A bound, not a timing assert: at 12/s no more than 12 per second can have moved.
    if 60 - b.s2 > 12 * elapsed + 2 then
        fail('%d buckets moved in %.2f s at 12/s', 60 - b.s2, elapsed)
    end
    -- Per-server bucket counts while draining (get_stat of each server).
    local seen = op_replicasets(router).s2
    eq(seen.by_alias['s2-0'].bucket_count > 0, true, 's2-0 still holds buckets')
    eq(seen.by_alias['s2-1'].bucket_count, seen.by_alias['s2-0'].bucket_count, 'its replica reports the same')
    ctlf("return d.set_drain_rate(3000, %q)", ns)
    wait('s2 drained', function() return buckets(ns).s2 == 0 end)
    eq(op(router, 'edit', {expel = {ids['s2-0'], ids['s2-1']}}), true, 'expel once drained')
end)

local F_IDS -- uuids of the cluster in ns-f (made by the first ns-f test)
test('eventual failover: a gone master stays master (unhealthy) for failover_timeout + extra, recovers before it is master again', function()
    local ns = 'ns-f'
    F_IDS = make_cluster(ns, {
        {rs = 'router', roles = {'vshard-router'}, pods = {'router-0'}},
        {rs = 's1', roles = {'vshard-storage'}, pods = {'s1-0', 's1-1'}},
    })
    local ids = F_IDS
    local router = sock(ns, 'router-0')
    eq(run(router, "return require('cartridge').failover_set_params({mode = 'eventual'})")[1], true, 'eventual')
    ctlf("return d.set_realistic_failover(%q, true)", ns)
    local m = ctlf("return d.model(%q)", ns)[1]
    eq(m.failover_delay, 3, 'realistic extra') eq(m.recovery, 2, 'realistic recovery')
    eq(m.failover.failover_timeout, 20, 'the failover_timeout it adds to')
    -- Fast for the test: failover_timeout 2 (override) + 1 s, recovery 1 s.
    ctlf("return d.set_failover_delay(%q, 1, 2)", ns)
    ctlf("return d.set_recovery(%q, 1)", ns)
    unserve(ns, 's1-0')
    local gone = fiber.clock()
    local rs = op_replicasets(router).s1
    eq(rs.master, ids['s1-0'], 'the gone master is still master')
    eq(rs.by_alias['s1-0'].healthy, false, 'and unhealthy')
    eq(rs.by_alias['s1-1'].replicating, false, 'its replica does not replicate')
    local info = run(router, ("return require('cartridge.lua-api.boxinfo').get_info(%q)"):format(uri(ns, 's1-1', 's1')))[1]
    eq(info.replication.replication_info[1].upstream_status, 'disconnected', 'upstream of the replica')
    eq(info.general.ro, true, 'the replica stays read-only meanwhile')
    wait('the next in priority is master', function() return op_replicasets(router).s1.master == ids['s1-1'] end)
    eq(fiber.clock() - gone >= 3, true, 'not before failover_timeout + extra')
    serve(ns, 's1-0')
    rs = op_replicasets(router).s1
    eq(rs.master, ids['s1-1'], 'a returning master is not master at once')
    eq(rs.by_alias['s1-0'].healthy, false, 'it is not healthy yet')
    eq(rs.by_alias['s1-0'].replicating, true, 'but replicates')
    eq(replicasets(ns, 'router-0').s1.servers[1].status, 'warning', 'status while recovering')
    wait('healthy and master again', function()
        local s1 = op_replicasets(router).s1
        return s1.master == ids['s1-0'] and s1.by_alias['s1-0'].healthy
    end)
    -- Off: failover switches at once again.
    ctlf("return d.set_realistic_failover(%q, false)", ns)
    unserve(ns, 's1-0')
    eq(op_replicasets(router).s1.master, ids['s1-1'], 'at once without the delay')
    serve(ns, 's1-0')
    eq(op_replicasets(router).s1.master, ids['s1-0'], 'and back at once')
end)

test('membership: an unjoined instance answers [] until reached, then proxies reads and edits', function()
    local ns = 'ns-f'
    ctlf("return d.set_membership_delay(%q, 1)", ns)
    serve(ns, 'n-0')
    local n = sock(ns, 'n-0')
    eq(#run(n, "return require('cartridge').admin_get_replicasets()")[1], 0, 'admin_get_replicasets')
    eq(#run(n, "return require('cartridge').admin_get_servers()")[1], 0, 'admin_get_servers')
    local _, raw = op(n, 'replicasets')
    eq(raw, '[]', 'the operator\'s projection')
    eq(run(n, "return require('cartridge').config_get_readonly()")[1], nil, 'no config yet')
    eq(run(n, "return require('cartridge').failover_get_params().mode")[1], 'disabled', 'its own (default) failover')
    local join = ([[
local _, err = require('cartridge').admin_edit_topology({replicasets = {
  {alias = 'n', roles = {}, join_servers = {{uri = %q}}}}})
return err and tostring(err)]]):format(uri(ns, 'n-0', 'n'))
    local r = run(n, join)
    eq(r[1] ~= nil and r[1]:match('^Invalid cluster topology config: servers%[.*%] can not be removed from config$') ~= nil,
        true, 'an edit through it does not reach the cluster: ' .. tostring(r[1]))
    wait('membership reaches it', function()
        return #run(n, "return require('cartridge').admin_get_replicasets()")[1] == 2
    end)
    eq(#op(n, 'replicasets'), 2, 'the operator\'s projection, proxied')
    eq(run(n, join)[1], nil, 'an edit through it, proxied')
    eq(#run(sock(ns, 'router-0'), "return require('cartridge').admin_get_replicasets()")[1], 3, 'joined')
    -- A member's probe reaches an instance at once.
    serve(ns, 'q-0')
    local q = sock(ns, 'q-0')
    eq(#run(q, "return require('cartridge').admin_get_replicasets()")[1], 0, 'a new one is not reached')
    eq(run(sock(ns, 'router-0'), ("return require('cartridge').admin_probe_server(%q)"):format(uri(ns, 'q-0', 'q')))[1],
        true, 'probe')
    eq(#run(q, "return require('cartridge').admin_get_replicasets()")[1], 3, 'reached by the probe')
    ctlf("return d.set_membership_delay(%q, 0)", ns)
    -- The fault forces it, even on a member.
    ctlf("return d.set_fault(%q, 'router-0', 'unreached')", ns)
    local router = sock(ns, 'router-0')
    eq(#run(router, "return require('cartridge').admin_get_replicasets()")[1], 0, 'forced')
    _, raw = op(router, 'edit', {replicasets = {{uuid = F_IDS.s1, weight = 2}}})
    eq(raw, ('admin_edit_topology: Editing cluster topology failed: Replicaset %q not in config'):format(F_IDS.s1),
        'an edit through it works on its empty config')
    ctlf("return d.set_fault(%q, 'router-0', nil)", ns)
    eq(#run(router, "return require('cartridge').admin_get_replicasets()")[1], 3, 'cleared')
end)

test('the operator\'s projection of a namespace without a cluster is []', function()
    serve('ns-e', 'e-0')
    local list, raw = op(sock('ns-e', 'e-0'), 'replicasets')
    eq(raw, '[]', 'replicasets') eq(#list, 0, 'decoded')
end)

test('clusterwide config: {} reads back as [] when switched on; the vshard section can be patched', function()
    local router = sock(NS_A, 'router-0')
    local sections = {sections = {'empty', 'nested'}}
    eq(op(router, 'config_patch', {patch = {empty = setmetatable({}, {__serialize = 'map'}), nested = {a = {}, b = 1}}}),
        true, 'patch')
    local _, raw = op(router, 'config_get', sections)
    eq(json.decode(raw).empty ~= nil and raw:find('"empty":{}', 1, true) ~= nil, true, 'default: {} comes back as {}: ' .. raw)
    ctlf("return d.set_config_as_stored(%q, true)", NS_A)
    eq(op(router, 'config_patch', {patch = {empty = setmetatable({}, {__serialize = 'map'}), nested = {a = {}, b = 1}}}),
        true, 'patch again')
    _, raw = op(router, 'config_get', sections)
    eq(raw:find('"empty":[]', 1, true) ~= nil, true, 'as stored: {} comes back as []: ' .. raw)
    eq(raw:find('"a":[]', 1, true) ~= nil, true, 'nested too: ' .. raw)
    ctlf("return d.set_config_as_stored(%q, false)", NS_A)
    eq(op(router, 'config_patch', {patch = {empty = box.NULL, nested = box.NULL}}), true, 'delete')
    -- vshard: validated like vshard-utils, the options kept.
    local r = run(router, [[
local c = require('cartridge')
local ok, err = c.config_patch_clusterwide({vshard = {bucket_count = 300, bootstrapped = true, rebalancer_max_receiving = 50}})
local v = c.config_get_readonly('vshard')
return ok, err and tostring(err), v.rebalancer_max_receiving, v.bucket_count, v.bootstrapped]])
    eq(r[1], true, 'vshard patch: ' .. tostring(r[2]))
    eq(r[3], 50, 'an option kept') eq(r[4], 300, 'bucket_count') eq(r[5], true, 'bootstrapped')
    local function patch_err(section)
        return run(router, ("local _, err = require('cartridge').config_patch_clusterwide({%s}) return tostring(err)")
            :format(section))[1]
    end
    eq(patch_err('vshard = {bucket_count = 301, bootstrapped = true}'), "ValidateConfigError: vshard.bucket_count can't be changed",
        'bucket_count')
    eq(patch_err('vshard = {bucket_count = 300}'), 'ValidateConfigError: vshard.bootstrapped must be true or false', 'bootstrapped')
    eq(patch_err('vshard = {bucket_count = 300, bootstrapped = true, sync_timeout = -1}'),
        'ValidateConfigError: vshard.sync_timeout must be non-negative', 'an option')
    eq(patch_err("topology = {}"), 'PatchClusterwideError: cartridge double: patching the "topology" section is not modelled',
        'topology')
    eq(run(router, "return require('cartridge').admin_bootstrap_vshard() == nil")[1], true, 'still bootstrapped')
end)

test('replication lag: tiny by default, may be negative, or drawn from a range', function()
    local ns = 'ns-f'
    local router = sock(ns, 'router-0')
    local function lag_of(alias)
        return op_replicasets(router).s1.by_alias[alias].replication_lag
    end
    eq(lag_of('s1-1'), 0.0004, 'the default lag of a following replica')
    eq(lag_of('s1-0'), nil, 'the master has none')
    ctlf("return d.set_lag(%q, 's1-1', -0.07)", ns)
    eq(lag_of('s1-1'), -0.07, 'a negative lag')
    ctlf("return d.set_lag(%q, 's1-1', nil)", ns)
    ctlf("return d.set_lag_range(%q, -0.07, 0.07)", ns)
    for _ = 1, 5 do
        local l = lag_of('s1-1')
        eq(l >= -0.07 and l <= 0.07, true, 'a lag in the range: ' .. tostring(l))
    end
    ctlf("return d.set_lag_range(%q)", ns)
    eq(lag_of('s1-1'), 0.0004, 'back to the default')
end)

test('faults: empty, late, refuse, foreign, timeout and garbage, per instance, until cleared', function()
    local ns = 'ns-f'
    local router, s10 = sock(ns, 'router-0'), sock(ns, 's1-0')
    local function fault(alias, name, opts)
        ctlf("return d.set_fault(%q, %q, %s, %s)", ns, alias, name and ('%q'):format(name) or 'nil',
            opts or 'nil')
    end
    -- empty
    fault('s1-0', 'empty')
    eq(#run(s10, "return require('cartridge').admin_get_replicasets()")[1], 0, 'empty: replica sets')
    eq(#run(s10, "return require('cartridge').admin_get_servers()")[1], 0, 'empty: servers')
    local _, raw = op(s10, 'replicasets')
    eq(raw, '[]', 'empty: the operator\'s projection')
    eq(run(s10, "return require('cartridge').failover_get_params().mode")[1], 'eventual', 'empty: other calls answer')
    eq(#run(router, "return require('cartridge').admin_get_replicasets()")[1], 3, 'other instances are not affected')
    eq(ctl("return d.fault('ns-f', 's1-0')")[1], 'empty', 'fault()')
    -- empty after the next edit: answers until an edit is applied in the namespace
    fault('s1-0', 'empty', '{after_edit = true}')
    eq(#run(s10, "return require('cartridge').admin_get_replicasets()")[1], 3, 'after_edit: answers before an edit')
    eq(op(router, 'edit', {replicasets = {{uuid = F_IDS.s1, weight = 1}}}), true, 'an edit through another instance')
    eq(#run(s10, "return require('cartridge').admin_get_replicasets()")[1], 0, 'after_edit: [] once an edit is applied')
    eq(#run(s10, "return require('cartridge').admin_get_servers()")[1], 0, 'after_edit: servers too')
    eq(#run(router, "return require('cartridge').admin_get_replicasets()")[1], 3, 'after_edit: only its instance')
    fault('s1-0', 'empty', '{after_edit = true}')
    eq(#run(s10, "return require('cartridge').admin_get_replicasets()")[1], 3, 'after_edit: set again, armed again')
    -- late
    fault('s1-0', 'late', '{delay = 0.5}')
    local t0 = fiber.clock()
    eq(run(s10, 'return 7')[1], 7, 'late: the answer')
    eq(fiber.clock() - t0 >= 0.5, true, 'late: not before its delay')
    -- refuse
    fault('s1-0', 'refuse')
    local r = run(s10, "local ok, err = require('cartridge').admin_get_replicasets() return ok, err.class_name, tostring(err)")
    eq(r[1], nil, 'refuse') eq(r[2], 'RemoteCallError', 'class')
    eq(r[3], 'RemoteCallError: refused by fault injection', 'default message')
    _, raw = op(s10, 'replicasets')
    eq(raw, 'admin_get_replicasets: RemoteCallError: refused by fault injection', 'refuse: the operator\'s chunk')
    _, raw = op(s10, 'edit', {replicasets = {{uuid = 'x', weight = 1}}})
    eq(raw, 'admin_edit_topology: RemoteCallError: refused by fault injection', 'refuse: an edit')
    fault('s1-0', 'refuse', "{class = 'NetboxCallError', message = 'Connection refused'}")
    eq(run(s10, "return tostring(select(2, require('cartridge').failover_get_params()))")[1],
        'NetboxCallError: Connection refused', 'refuse: a configured error')
    -- foreign: the view of another namespace
    fault('s1-0', 'foreign', ('{from_ns = %q}'):format(NS_A))
    local seen = op_replicasets(s10)
    eq(seen.s3 ~= nil and seen.router ~= nil, true, 'foreign: the other namespace\'s replica sets')
    eq(seen.s1.uuid, U.rs_s1, 'foreign: with its uuids')
    eq(run(s10, "return require('cartridge.lua-api.stat').get_stat().vshard_buckets_count")[1],
        buckets(NS_A).s1, 'foreign: answers as s1-0 of the other namespace')
    -- timeout (= hang), set with set_fault, cleared with set_mode
    fault('s1-0', 'timeout')
    eq(ctl("return d.fault('ns-f', 's1-0')")[1], 'hang', 'timeout is hang')
    eq(replicasets(ns, 'router-0').s1.servers[1].status, 'unreachable', 'timeout: unreachable')
    ctlf("return d.set_mode(%q, 's1-0', 'ok')", ns)
    eq(run(s10, 'return 8')[1], 8, 'cleared with set_mode ok')
    -- garbage through set_fault
    fault('s1-0', 'garbage')
    eq(pcall(yaml.decode, console(s10):eval('return 1')), false, 'garbage')
    fault('s1-0', nil)
    eq(run(s10, 'return 9')[1], 9, 'cleared with set_fault nil')
    -- per (namespace, alias): set before the pod is served, kept across a restart
    fault('f-0', 'empty')
    serve(ns, 'f-0')
    eq(#run(sock(ns, 'f-0'), "return require('cartridge').admin_get_servers()")[1], 0, 'set before served')
    unserve(ns, 'f-0')
    serve(ns, 'f-0')
    eq(#run(sock(ns, 'f-0'), "return require('cartridge').admin_get_servers()")[1], 0, 'kept across a restart')
    local modes = {}
    for _, i in ipairs(ctl('return d.instances()')[1]) do modes[i.namespace .. '/' .. i.alias] = i.mode end
    eq(modes['ns-f/f-0'], 'empty', 'instances() shows it')
    ctlf("return d.set_mode(%q, 'f-0', 'late')", ns)
    eq(ctl("return d.fault('ns-f', 'f-0')")[1], 'late', 'set_mode takes the new faults')
    ctlf("return d.set_mode(%q, 'f-0', 'ok')", ns)
    eq(ctl("return d.fault('ns-f', 'f-0')")[1], 'ok', 'cleared')
    eq(pcall(ctl, "return d.set_fault('ns-f', 'f-0', 'sideways')"), false, 'an unknown fault is refused')
    eq(pcall(ctl, "return d.set_mode('ns-f', 'nobody-0', 'hang')"), false, 'set_mode needs a served instance')
end)

test('marker files make the double serve and stop serving a socket', function()
    local path = fio.pathjoin(DIR, 'ns-m-p-0.control')
    local marker = fio.pathjoin(MARKERS, 'ns-m_p-0.json')
    local fh = io.open(marker .. '.tmp', 'w')
    fh:write(json.encode({namespace = 'ns-m', pod = 'p-0', socket = path}))
    fh:close()
    os.rename(marker .. '.tmp', marker)
    wait('served from a marker', function() return fio.path.lexists(path) end)
    eq(run(path, "return require('cartridge').admin_get_servers ~= nil")[1], true, 'the socket reaches the double')
    os.remove(marker)
    wait('socket removed with its marker', function() return not fio.path.lexists(path) end)
    local gone = netbox.connect(path, {console = true, connect_timeout = 1})
    eq(gone:is_connected(), false, 'connect after the marker is gone')
end)

-- ------------------------------------------------------------------ runner
local failed = 0
for _, t in ipairs(tests) do
    local ok, err = pcall(t.fn)
    if ok then
        print('ok    ' .. t.name)
    else
        failed = failed + 1
        print('FAIL  ' .. t.name .. '\n      ' .. tostring(err))
    end
end
for _, c in pairs(conns) do pcall(c.close, c) end
print(('%d tests, %d failed'):format(#tests, failed))
os.exit(failed == 0 and 0 or 1)

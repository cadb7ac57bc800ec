-- admin_edit_topology: args is the operator's TopologyEdit.
local replicasets = {}
for _, r in ipairs(args.replicasets or {}) do
    local edit = {
        uuid = r.uuid,
        alias = r.alias,
        roles = r.roles,
        weight = r.weight,
        all_rw = r.all_rw,
        vshard_group = r.vshard_group,
        failover_priority = r.failover_priority,
    }
    if r.join_servers ~= nil and #r.join_servers > 0 then
        -- All new servers of a replica set in this one call.
        edit.join_servers = {}
        for _, s in ipairs(r.join_servers) do
            table.insert(edit.join_servers, {uri = s.uri, uuid = s.uuid})
        end
    end
    table.insert(replicasets, edit)
end
local servers = {}
for _, uuid in ipairs(args.expel or {}) do
    table.insert(servers, {uuid = uuid, expelled = true})
end
local request = {}
if #replicasets > 0 then request.replicasets = replicasets end
if #servers > 0 then request.servers = servers end
call('admin_edit_topology', request)
return json.encode(true)

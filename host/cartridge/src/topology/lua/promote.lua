-- failover_promote({[args.replicaset] = args.instance}) under stateful and
-- raft failover, where the active master is appointed and a new
-- failover_priority alone does not move it. Elsewhere nothing to do: the
-- priority already switched the master. Returns whether it promoted.
local p = call('failover_get_params')
local mode = str(p.mode) or 'disabled'
if mode ~= 'stateful' and mode ~= 'raft' then
    return json.encode(false)
end
call('failover_promote', {[args.replicaset] = args.instance}, {force_inconsistency = false})
return json.encode(true)

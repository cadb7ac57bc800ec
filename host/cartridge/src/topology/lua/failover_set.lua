-- failover_set_params(args): absent fields are left as they are.
call('failover_set_params', args)
return json.encode(true)

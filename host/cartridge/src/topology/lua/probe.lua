-- admin_probe_server(uri): the instance behind uri answers.
call('admin_probe_server', args.uri)
return json.encode(true)

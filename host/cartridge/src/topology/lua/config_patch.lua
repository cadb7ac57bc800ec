-- config_patch_clusterwide(patch): a null (box.NULL) value deletes a section.
call('config_patch_clusterwide', args.patch)
return json.encode(true)

"""Files that survive a kill: atomic writes (`atomic`) and the cache of what visurf builds on
first use (`cache`)."""

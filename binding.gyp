{
  "targets": [
    {
      "target_name": "podlegs_netns",
      "sources": ["native/netns.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}

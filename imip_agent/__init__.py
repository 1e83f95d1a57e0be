"""imip-agent programs: thin command-line entry points over imiptools."""

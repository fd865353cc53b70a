"""`python -m jaxaffect ...` is `jaxaffect ...`."""

from jaxaffect.cli import main

raise SystemExit(main())

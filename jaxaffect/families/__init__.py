"""One package per paper family, found by convention (see `jaxaffect.family`)."""

from pkgutil import extend_path

# Lets a `jaxaffect/families/<name>/` folder elsewhere on sys.path add a family.
__path__ = extend_path(__path__, __name__)

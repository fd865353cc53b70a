"""One package per paper family, found by convention (see `jaxaffect.family`).

`jaxaffect.family` also adds every `jaxaffect/families/` folder found on sys.path to this
package's path, so a family can live outside this repository.
"""

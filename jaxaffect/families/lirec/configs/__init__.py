"""LIReC configs (`configs/lirec` links here), one module per paper setting group:

* ``interactions.py`` -- interaction classification (Tables 1 and 4);
* ``relationships.py`` -- relationships from several clips of a pair (Fig. 5), built on it;
* ``joint.py`` -- interactions and relationships together (Table 3), built on relationships;
* ``characters.py`` -- who is interacting (Tables 5 and 6), built on interactions;
* ``common.py`` -- the config arguments they all take (``released``, ``data``, ``runlocal``).

Each module's ``get_config(arg)`` returns the ConfigDict and ``sweep(add, arg)`` the runs of
its tables; ``jaxaffect train --config configs/lirec/<module>.py:<arg>`` loads them.
"""

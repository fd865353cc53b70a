"""AMER configs (`configs/amer` links here): ``amer.py`` holds every field and every row of
Tables 3-5 of the MEmoR paper as a config argument (``model=``, ``labels=``, ``modalities=``,
``subset=``), with ``sweep(add, "table=3|4|5")`` listing the runs of each table;
``jaxaffect train --config configs/amer/amer.py:<arg>`` loads it."""

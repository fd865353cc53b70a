"""AV-CPNet configs (`configs/avcpnet` links here): ``avcpnet.py`` holds every field and every
row of Tables 7-9 of the eMotions paper as a config argument (``row=``, ``fusion=``,
``gammas=``, ``data=``), with ``sweep(add, "table=7|8|9")`` listing the runs of each table;
``jaxaffect train --config configs/avcpnet/avcpnet.py:<arg>`` loads it."""

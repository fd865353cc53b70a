"""PERR configs (`configs/perr` links here), one module per row group of the paper's Table 3:

* ``smta.py`` -- SMTA, the attention A_t over the modality features and the LSTM state;
* ``lstm.py`` -- the plain LSTM baseline, built on smta.py (no attention);
* ``attention.py`` -- attention without temporal context, built on smta.py.

Each module's ``get_config(arg)`` returns the ConfigDict and ``sweep(add, arg)`` the runs of
its rows; ``jaxaffect train --config configs/perr/<module>.py:<arg>`` loads them.
"""

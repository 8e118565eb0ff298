"""Each method as a dataset Task: the adapters between the run machinery and methods/.

Reading order: `registry.py` (method name -> config class and Task), `base.py` (the one Task base:
decode, size, record), then one module per method (stylize, texture, invert, dream, visualize,
imagine) and `visualize_reduce.py` (visualize's reduce step). A Task plans samples and turns each
into tar members; what is optimised lives in methods/, how a run is carried out in run/.
"""

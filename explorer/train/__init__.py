"""Training: start and resume a run (``run``), the loop (``loop``), the step runners (``steps``,
``cuda_graph``, ``distributed``), what a run leaves behind (``recorder``, ``runfolder``) and the
app's training processes (``jobs``)."""

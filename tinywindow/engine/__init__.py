"""The engine a user points at their own universe: the ``run`` section (``config``), the plan
``tinywindow config check`` prints (``plan``) and the run summary (``summary``)."""

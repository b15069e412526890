"""The ``mnaszoo`` command line: :mod:`.main` (parser, logging, errors) and one module per
command (``listing``, ``info``, ``predict``, ``download``, ``evaluate``, ``bench``, ``search``)."""

"""The ``reminders`` command line: ``up`` (what ``make run`` runs), ``migrate``, ``services``."""

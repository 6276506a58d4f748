"""Helpers for the Temporal workbook: server, worker, history, widgets, and one workflow module per notebook."""

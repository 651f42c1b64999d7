"""The run report: one self-contained HTML page of a run's records (``build_report``)."""

from tinywindow.report.html import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]

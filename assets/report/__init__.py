"""The credit officers' exports without Dagster: queries, charts, HTML and file writing.

Kept free of Dagster so each part is tested on plain values or a hand-built DuckDB file; the
asset in `assets/exports.py` only wires the warehouse resource to these modules:
`queries` (marts -> ReportData), `charts` (Altair -> SVG), `render` (Jinja2 -> HTML) and
`files` (the files in `<exports>/<as_of>/`).
"""

"""YAML-driven reports (`python -m planner report REPORT.yaml --out DIR`, CONTRACT.md §1).

spec.py (report file loader) -> plans.py (scenarios, one estimate each) -> tables.py / claims.py / api.py /
external.py (planner numbers as DataFrames) -> figures.py (pure plotly builders) -> sections.py ->
render.py (HTML, Markdown) -> build.py (atomic write of DIR/index.html, report.md, *.csv, *.png).
"""

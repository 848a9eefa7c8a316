"""The Streamlit dashboard behind `app.py`: cached planner calls (data), the few figures planner/report does not
build (figures), shared widgets (ui) and one module per page (views). Pages only render what the planner computed."""

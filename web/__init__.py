"""The bureaus' web portal (FastAPI + Jinja2, served by uvicorn): see web.app."""

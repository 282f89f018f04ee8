"""HTML pages (placeholder until the pages land)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

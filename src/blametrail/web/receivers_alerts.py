"""Placeholder: routes arrive with the evidence-sources work."""

from fastapi import APIRouter

router = APIRouter()

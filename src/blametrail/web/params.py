"""Path and query parameter types shared by the routes: ids the database can hold, refused with 422 otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from blametrail.db import MAX_INT

# why: a larger id reaching a query is a database error on PostgreSQL (integer out of range), never "not found"
MAX_ID = MAX_INT

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

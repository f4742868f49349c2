"""Import every area's tables so metadata is complete (Alembic, tests)."""

from forecourt.auth import models as auth_models
from forecourt.db import Base
from forecourt.fuel import models as fuel_models
from forecourt.outbox import models as outbox_models
from forecourt.pump import models as pump_models
from forecourt.station import models as station_models

__all__ = ["Base", "auth_models", "fuel_models", "outbox_models", "pump_models", "station_models"]

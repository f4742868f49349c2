"""Import every area's tables so metadata is complete (Alembic, tests)."""

from forecourt.auth import models as auth_models
from forecourt.backoffice import models as backoffice_models
from forecourt.db import Base
from forecourt.fuel import models as fuel_models
from forecourt.invoice import models as invoice_models
from forecourt.loyalty import models as loyalty_models
from forecourt.order import models as order_models
from forecourt.outbox import models as outbox_models
from forecourt.payment import models as payment_models
from forecourt.pump import models as pump_models
from forecourt.station import models as station_models
from forecourt.wallet import models as wallet_models

__all__ = [
    "Base",
    "auth_models",
    "backoffice_models",
    "fuel_models",
    "invoice_models",
    "loyalty_models",
    "order_models",
    "outbox_models",
    "payment_models",
    "pump_models",
    "station_models",
    "wallet_models",
]

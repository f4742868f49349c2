"""Dispensers, fuelling points and nozzles: the pump state machine and its MQTT protocol."""

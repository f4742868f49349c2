"""The link between the server and station devices: MQTT 5 or in-process."""

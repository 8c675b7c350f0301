"""What runs the plant in one process: the embedded PostgreSQL and MQTT broker used when no
server is configured (``services``, ``embedded_broker``), and ``enms demo`` (``demo``)."""

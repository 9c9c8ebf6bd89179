"""The clinic service: the clinic's side of homeapp.

Devices upload their hash-chained, device-signed session log here and fetch the
prescriptions their clinician signed; clinicians (through `homeapp-clinic` and the JSON
API, later through web pages) see only their own patients. It never imports the session
engine, the board (`hw/`) or the touchscreen UI, and nothing on the device imports it.
"""

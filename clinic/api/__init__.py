"""The clinic's JSON API: `device` (signed requests from paired devices) and `clinician`
(clinicians signed in with a bearer token). The web pages live in clinic.web."""

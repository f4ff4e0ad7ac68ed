"""The composition root: settings, the programme loader, the app factory, the CLI and observability."""

"""National codes: resident ID numbers, Unified Social Credit Codes and divisions. No database."""

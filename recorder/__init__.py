"""What vigie keeps: anonymised event metadata (and, later, anonymised clips)."""

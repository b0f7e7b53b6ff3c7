"""Commands of this area are added by their issue."""

"""What each method optimises: stylize, texture, invert, dream, visualize."""

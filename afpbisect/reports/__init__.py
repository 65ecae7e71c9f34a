"""What a command leaves behind: JSON, Markdown, HTML (with SVG plots) and JUnit reports,
and how each was made (provenance)."""

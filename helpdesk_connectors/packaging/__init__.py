"""Ready-to-upload helpdesk app packages built for one deployment (issue 16)."""

// generated streams: see below

"""Lead scoring: the rules language (:mod:`.rules`), the engine that scores events and changes in the
caller's transaction (:mod:`.engine`), decay (:mod:`.decay`), manual adjustments, the lock and the `/lead
score` breakdown (:mod:`.service`), set-based rescoring (:mod:`.rescore`), and what happens after the commit
(:mod:`.publish`)."""

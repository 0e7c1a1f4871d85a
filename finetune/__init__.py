"""finetune: instruction fine-tuning of GPT-2 as in chapter 7 of *Build a Large Language Model (From Scratch)*."""

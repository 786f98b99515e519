from gate.launch import main

main()
